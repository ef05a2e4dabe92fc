// Preloaded into kinesalite and dynalite by scripts/emulators.sh (node -r).
//
// Both rethrow an "aborted" request error (ECONNRESET) from inside their
// request handlers, which kills the whole emulator when a client goes away
// mid-request. The tests do exactly that on purpose: the crash test
// SIGKILLs readers and writers at random moments, and cancelled contexts
// close connections. A real Kinesis or DynamoDB shrugs this off, so the
// emulators must too: log it and keep serving. Any other uncaught error
// still ends the process.
'use strict';
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`emulator-guard: a client went away mid-request (${err.message}); still serving`);
    return;
  }
  console.error(err);
  process.exit(1);
});
