// Preloaded into a `postern serve` child by the proxy benchmarks when POSTERN_PROFILE=<dir> is set
// (or POSTERN_V8_FLAGS)
// (NODE_OPTIONS refuses --cpu-prof): starts the V8 sampling profiler in-process and writes
// <dir>/postern-<pid>.cpuprofile when the process exits. Summarise it with proxy-profile.ts.
// Plain JavaScript: NODE_OPTIONS preloads it into the analysis worker threads too, where it does nothing.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

// POSTERN_V8_FLAGS (e.g. "--trace-deopt"): V8 flags NODE_OPTIONS refuses, set at startup instead.
const serving = isMainThread && process.argv.includes('serve');
if (serving && process.env.POSTERN_V8_FLAGS) setFlagsFromString(process.env.POSTERN_V8_FLAGS);

const dir = process.env.POSTERN_PROFILE;
if (dir && serving) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // Same-thread inspector sessions answer synchronously, so this completes before the exit.
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `postern-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
