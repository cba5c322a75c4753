// Waiting for something another process does: poll until it holds, or fail saying what never happened.
export async function until(what: () => boolean | Promise<boolean>, ms = 15_000, why = 'condition', stepMs = 50): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${why}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
