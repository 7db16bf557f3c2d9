// Makes the sidecar exit when the process that spawned it is gone, even if its stdin pipe stays open
// (e.g. inherited by another process). Closing stdin is the main signal; this is the safety net.
const POLL_MS = 1000;

export function exitWhenParentDies(parentPid: number, onParentGone: () => void): void {
  const originalPpid = process.ppid;
  const timer = setInterval(() => {
    // On POSIX an orphan is re-parented (ppid changes); on Windows ppid stays, so also ask the OS.
    if (process.ppid !== originalPpid || !isAlive(parentPid)) {
      clearInterval(timer);
      onParentGone();
    }
  }, POLL_MS);
  timer.unref();
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
