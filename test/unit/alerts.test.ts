import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

describe('Prometheus alert rules (config/prometheus/crr-alerts.yml)', () => {
  it('pass `promtool check rules` and every `promtool test rules` case', () => {
    const out = execFileSync('bash', [`${root}scripts/promtool.sh`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
    expect(out).toMatch(/SUCCESS/);
  }, 120_000);

  it('have a promtool test case for every alert, and use only metrics crr exports', () => {
    const rules = parse(readFileSync(`${root}config/prometheus/crr-alerts.yml`, 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const tests = readFileSync(`${root}config/prometheus/crr-alerts.test.yml`, 'utf8');
    const metricsSource = ['src/mirror/metrics.ts', 'src/checkpoint/metrics.ts', 'src/replay/metrics.ts']
      .map((f) => readFileSync(`${root}${f}`, 'utf8'))
      .join('\n');
    for (const rule of rules.groups.flatMap((g) => g.rules)) {
      expect(tests, rule.alert).toContain(`alertname: ${rule.alert}`);
      for (const metric of rule.expr.match(/crr_[a-z_]+/g) ?? []) {
        expect(metricsSource, `${rule.alert} uses ${metric}`).toContain(`'${metric.replace(/_bucket$/, '')}'`);
      }
    }
  });
});

/** GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces as dashes. */
const githubAnchor = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

describe('Runbooks (docs/runbooks/)', () => {
  it("alerts.md has a section per alert, and each alert's runbook annotation points at it", () => {
    const rules = parse(readFileSync(`${root}config/prometheus/crr-alerts.yml`, 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; annotations?: Record<string, string> }> }>;
    };
    const doc = readFileSync(`${root}docs/runbooks/alerts.md`, 'utf8');
    const sections = [...doc.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim());
    const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    expect(alerts.length).toBeGreaterThan(10);
    for (const rule of alerts) {
      expect(sections, `docs/runbooks/alerts.md has a section "## ${rule.alert}"`).toContain(rule.alert);
      expect(rule.annotations?.runbook, `${rule.alert}: annotation runbook`).toBe(`docs/runbooks/alerts.md#${githubAnchor(rule.alert)}`);
    }
    // and no section for an alert that no longer exists
    const names = new Set(alerts.map((r) => r.alert));
    for (const s of sections.filter((x) => /^Crr[A-Za-z]+$/.test(x))) expect(names, `section "## ${s}" names an alert of crr-alerts.yml`).toContain(s);
  });

  it('name only real crr subcommands and options in their sh blocks, and link only runbooks that exist', () => {
    const dir = `${root}docs/runbooks/`;
    const files = readdirSync(dir).filter((f) => f.endsWith('.md'));
    const commands = files.flatMap((f) =>
      [...readFileSync(dir + f, 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
        m[1]!
          .split('\n')
          .map((l) => l.replace(/\s+#.*$/, '').trim())
          .filter((l) => l.startsWith('crr '))
          .map((l) => ({ file: f, line: l })),
      ),
    );
    expect(commands.length).toBeGreaterThan(10);
    expect(existsSync(`${root}dist/cli/main.js`), 'dist/ is built (npm run build)').toBe(true);
    // `crr [group] sub --help` prints `Usage: crr [group] sub [options]` for a real command; an
    // unknown one falls back to the usage of its parent, so the usage line tells them apart.
    const helpCache = new Map<string, string>();
    const help = (words: string[]): string => {
      const key = words.join(' ');
      if (!helpCache.has(key)) {
        const r = spawnSync(process.execPath, [`${root}bin/crr.js`, ...words, '--help'], { encoding: 'utf8' });
        helpCache.set(key, r.stdout);
      }
      return helpCache.get(key)!;
    };
    const usageOf = (out: string): string => /^Usage: (crr(?: [a-z][a-z-]*)*)/m.exec(out)?.[1] ?? '';
    for (const { file, line } of commands) {
      const words = line.split(/\s+/).slice(1);
      const sub = words.slice(0, 2).filter((w) => /^[a-z][a-z-]*$/.test(w));
      let path = sub.slice(0, 1);
      expect(usageOf(help(path)), `${file}: \`${line}\`: crr has no subcommand "${path[0]}"`).toBe(`crr ${path[0]}`);
      // a group (backup, admin): the next word must be one of its commands
      if (/^Commands:/m.test(help(path)) && sub[1]) {
        path = sub;
        expect(usageOf(help(path)), `${file}: \`${line}\`: crr ${sub[0]} has no subcommand "${sub[1]}"`).toBe(`crr ${path.join(' ')}`);
      }
      const options = help(path);
      for (const opt of words.filter((w) => w.startsWith('--'))) {
        expect(options, `${file}: \`${line}\`: crr ${path.join(' ')} has no option ${opt}`).toMatch(
          new RegExp(`(^|[\\s,])${opt.replace(/=.*$/, '')}([\\s,=]|$)`, 'm'),
        );
      }
    }
    for (const f of files) {
      for (const m of readFileSync(dir + f, 'utf8').matchAll(/\]\(([a-z0-9-]+\.md)(#[^)]*)?\)/g)) {
        expect(files, `${f} links ${m[1]}`).toContain(m[1]);
      }
    }
  }, 60_000);
});

describe('Grafana dashboard (config/grafana/crr-dashboard.json)', () => {
  it('is valid JSON whose panels query only metrics crr exports', () => {
    const dashboard = JSON.parse(readFileSync(`${root}config/grafana/crr-dashboard.json`, 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const metricsSource = ['src/mirror/metrics.ts', 'src/checkpoint/metrics.ts', 'src/replay/metrics.ts']
      .map((f) => readFileSync(`${root}${f}`, 'utf8'))
      .join('\n');
    expect(dashboard.panels.length).toBeGreaterThan(5);
    for (const panel of dashboard.panels) {
      for (const metric of panel.targets.flatMap((t) => t.expr.match(/crr_[a-z_]+/g) ?? [])) {
        expect(metricsSource, `${panel.title} uses ${metric}`).toContain(`'${metric.replace(/_bucket$/, '')}'`);
      }
    }
  });
});
