// cni-conf/*.conflist files are bundled as JSON (esbuild loader), so the binary ships the same configs.
declare module '*.conflist' {
  const value: { cniVersion: string; name: string; plugins: Record<string, any>[] };
  export default value;
}
