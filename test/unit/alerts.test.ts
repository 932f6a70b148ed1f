import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
    const rules = parse(readFileSync(`${root}config/prometheus/crr-alerts.yml`, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const tests = readFileSync(`${root}config/prometheus/crr-alerts.test.yml`, 'utf8');
    const metricsSource = ['src/mirror/metrics.ts', 'src/replay/metrics.ts'].map((f) => readFileSync(`${root}${f}`, 'utf8')).join('\n');
    for (const rule of rules.groups.flatMap((g) => g.rules)) {
      expect(tests, rule.alert).toContain(`alertname: ${rule.alert}`);
      for (const metric of rule.expr.match(/crr_[a-z_]+/g) ?? []) {
        expect(metricsSource, `${rule.alert} uses ${metric}`).toContain(`'${metric.replace(/_bucket$/, '')}'`);
      }
    }
  });
});

describe('Grafana dashboard (config/grafana/crr-dashboard.json)', () => {
  it('is valid JSON whose panels query only metrics crr exports', () => {
    const dashboard = JSON.parse(readFileSync(`${root}config/grafana/crr-dashboard.json`, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const metricsSource = ['src/mirror/metrics.ts', 'src/replay/metrics.ts'].map((f) => readFileSync(`${root}${f}`, 'utf8')).join('\n');
    expect(dashboard.panels.length).toBeGreaterThan(5);
    for (const panel of dashboard.panels) {
      for (const metric of panel.targets.flatMap((t) => t.expr.match(/crr_[a-z_]+/g) ?? [])) {
        expect(metricsSource, `${panel.title} uses ${metric}`).toContain(`'${metric.replace(/_bucket$/, '')}'`);
      }
    }
  });
});
