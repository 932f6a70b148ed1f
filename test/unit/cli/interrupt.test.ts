import { describe, expect, it } from 'vitest';
import { onStopSignals } from '../../../src/cli/interrupt.js';

describe('onStopSignals: SIGTERM stops a one-shot command like SIGINT', () => {
  it('SIGTERM aborts the signal and maps to exit 143, SIGINT to 130; the handlers go at the first signal', () => {
    const before = { int: process.listenerCount('SIGINT'), term: process.listenerCount('SIGTERM') };
    const term = onStopSignals();
    expect(process.listenerCount('SIGTERM')).toBe(before.term + 1);
    process.emit('SIGTERM', 'SIGTERM');
    expect(term.signal.aborted).toBe(true);
    expect(term.received).toBe('SIGTERM');
    expect(term.exitCode()).toBe(143);
    expect(String(term.signal.reason)).toContain('interrupted by SIGTERM');
    // both handlers removed: a second signal gets the default action (the process dies at once)
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual([before.int, before.term]);

    const int = onStopSignals();
    process.emit('SIGINT', 'SIGINT');
    expect([int.received, int.exitCode()]).toEqual(['SIGINT', 130]);

    const none = onStopSignals();
    none.dispose();
    expect(none.signal.aborted).toBe(false);
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual([before.int, before.term]);
  });
});
