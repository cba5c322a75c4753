// Stand-in for pino's thread-stream (worker-thread transports), which podwire never uses.
module.exports = function ThreadStream() {
  throw new Error('podwire does not use pino transports');
};
