import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT, runCrr, type CrrProcess } from './helpers.js';

/**
 * Runs a runbook of docs/runbooks/ in a test, command by command, and checks that the test runs
 * exactly the runbook's commands in the runbook's order: every line of a ```sh block that starts
 * with `crr ` is a step. The runbook names the config `crr.yaml` and the clusters `primary` and
 * `dr`; `names` maps them to the test's config file and aliases.
 *
 * - `run(cmd, expectCode)` checks that `cmd` is the runbook's next step, runs it to completion
 *   and checks the exit code (default 0);
 * - `start(cmd)` does the same for a long-running step (`crr run ...`), returning the process;
 * - `done()` checks that every step of the runbook was run.
 */
export class Runbook {
  readonly steps: string[];
  private next = 0;

  constructor(
    readonly name: string,
    /** Runbook words (`crr.yaml`, `primary`, `dr`) -> the test's values; may change between steps. */
    readonly names: Record<string, string>,
    /** Starts a long-running step (the `start` of useCrrProcesses, which kills it after the test). */
    private readonly starter: (args: string[]) => CrrProcess,
  ) {
    const text = readFileSync(join(ROOT, 'docs', 'runbooks', `${name}.md`), 'utf8');
    this.steps = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
      m[1]!
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('crr ')),
    );
    expect(this.steps.length, `docs/runbooks/${name}.md has crr steps in sh blocks`).toBeGreaterThan(0);
  }

  private argv(cmd: string): string[] {
    expect(this.steps[this.next], `step ${this.next + 1} of docs/runbooks/${this.name}.md`).toBe(cmd);
    this.next += 1;
    const words = cmd
      .replace(/\s+#.*$/, '')
      .split(/\s+/)
      .slice(1);
    return words.map((w) => this.names[w] ?? w);
  }

  async run(cmd: string, expectCode = 0): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const r = await runCrr(this.argv(cmd));
    expect(r.code, `${cmd}\n${r.stdout}${r.stderr}`).toBe(expectCode);
    return r;
  }

  start(cmd: string, extraArgs: string[] = []): CrrProcess {
    return this.starter([...this.argv(cmd), ...extraArgs]);
  }

  done(): void {
    expect(this.steps.slice(this.next), `steps of docs/runbooks/${this.name}.md the test did not run`).toEqual([]);
  }
}
