/**
 * The Kubernetes manifests in deploy/k8s, checked against what biostore
 * actually is: its commands and flags, its variables, which of them are
 * secrets, its port and probe routes. A manifest that drifts from the code
 * fails here instead of in a cluster at 03:00.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { processIo } from '../../src/cli/io.js';
import { loadConfig, SECRET_VARS, VARS } from '../../src/core/config.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/k8s');
const NAMESPACE = 'biostore';
const CONFIGMAP = 'biostore-config';
const SECRET = 'biostore-secrets';
/** Read by glibc, not by biostore; keeps the sharp workers' RSS down. */
const NON_BIOSTORE_KEYS = new Set(['MALLOC_ARENA_MAX']);
/** Never in a ConfigMap: secrets, and URIs that carry credentials. */
const NEVER_IN_CONFIGMAP = new Set([...SECRET_VARS, 'MONGODB_URI', 'REDIS_URL', 'AWS_ACCESS_KEY_ID']);

interface Manifest {
  file: string;
  doc: any;
}

function load(file: string): Manifest[] {
  const docs = parseAllDocuments(readFileSync(join(DIR, file), 'utf8'));
  return (Array.isArray(docs) ? docs : []).map((d) => {
    expect(d.errors, `${file}: YAML errors`).toEqual([]);
    return { file, doc: d.toJS() };
  });
}

const yamlFiles = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const manifestFiles = yamlFiles.filter((f) => f !== 'kustomization.yaml');
const all = manifestFiles.flatMap(load);
const deployed = all.filter((m) => m.file !== 'secret.example.yaml');
const ofKind = (kind: string) => deployed.filter((m) => m.doc.kind === kind).map((m) => m.doc);
const one = (kind: string) => {
  const found = ofKind(kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return found[0];
};

/** The pod spec inside any workload. */
function podSpec(doc: any): any {
  switch (doc.kind) {
    case 'Deployment':
    case 'Job':
      return doc.spec.template.spec;
    case 'CronJob':
      return doc.spec.jobTemplate.spec.template.spec;
    default:
      return undefined;
  }
}

const workloads = deployed.map((m) => m.doc).filter((d) => podSpec(d) !== undefined);
const containersOf = (doc: any): any[] => {
  const spec = podSpec(doc);
  return [...(spec.initContainers ?? []), ...spec.containers];
};
const allContainers = workloads.flatMap((w) => containersOf(w).map((c) => ({ workload: w, c })));

const program = buildProgram(processIo());
const commandNames = program.commands.map((c) => c.name());
const globalFlags = program.options.map((o) => o.long);

describe('deploy/k8s manifests', () => {
  it('has the expected files, each document a named Kubernetes object', () => {
    expect(yamlFiles).toEqual(
      expect.arrayContaining([
        'namespace.yaml',
        'configmap.yaml',
        'secret.example.yaml',
        'daemon.yaml',
        'cronjobs.yaml',
        'init-job.yaml',
        'kustomization.yaml',
      ]),
    );
    expect(all.length).toBeGreaterThanOrEqual(9);
    for (const { file, doc } of all) {
      expect(doc, file).toBeTypeOf('object');
      expect(doc.apiVersion, file).toMatch(/^[a-z0-9./]*v\d+\w*$/);
      expect(doc.kind, file).toMatch(/^[A-Z]\w+$/);
      expect(doc.metadata?.name, `${file} ${doc.kind}`).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace, `${file} ${doc.kind}`).toBe(NAMESPACE);
    }
    const names = all.map((m) => `${m.doc.kind}/${m.doc.metadata.name}`);
    expect(new Set(names).size, 'no duplicate objects').toBe(names.length);
  });

  it('kustomization lists every manifest but the secret example, and sets the namespace', () => {
    const [k] = load('kustomization.yaml').map((m) => m.doc);
    expect(k.kind).toBe('Kustomization');
    expect(k.namespace).toBe(NAMESPACE);
    expect([...k.resources].sort()).toEqual(manifestFiles.filter((f) => f !== 'secret.example.yaml').sort());
    expect(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')).toMatch(/secret\.example\.yaml/);
  });

  it('every container runs the biostore image with the ConfigMap and the Secret', () => {
    expect(allContainers.length).toBeGreaterThanOrEqual(5);
    for (const { workload, c } of allContainers) {
      const where = `${workload.kind}/${workload.metadata.name} ${c.name}`;
      expect(c.image, where).toMatch(/^biostore:/);
      expect(c.command, `${where}: keep the image's entrypoint`).toBeUndefined();
      const envFrom = c.envFrom ?? [];
      expect(envFrom.map((e: any) => e.configMapRef?.name), where).toContain(CONFIGMAP);
      expect(envFrom.map((e: any) => e.secretRef?.name), where).toContain(SECRET);
      expect(c.env, `${where}: configuration belongs in the ConfigMap`).toBeUndefined();
    }
  });

  it('every container runs as non-root, read-only, without privileges', () => {
    for (const { workload, c } of allContainers) {
      const where = `${workload.kind}/${workload.metadata.name} ${c.name}`;
      const pod = podSpec(workload).securityContext ?? {};
      const sc = { ...pod, ...c.securityContext };
      expect(sc.runAsNonRoot, where).toBe(true);
      expect(sc.runAsUser, where).toBe(1000);
      expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
      expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
      expect(c.securityContext?.capabilities?.drop, where).toEqual(['ALL']);
      // A read-only root needs a writable /tmp (libvips, Node).
      const tmp = (c.volumeMounts ?? []).find((v: any) => v.mountPath === '/tmp');
      expect(tmp, `${where}: /tmp mount`).toBeDefined();
      const vol = (podSpec(workload).volumes ?? []).find((v: any) => v.name === tmp.name);
      expect(vol?.emptyDir, `${where}: /tmp is an emptyDir`).toBeDefined();
      expect(c.resources?.requests?.memory, where).toBeDefined();
      expect(c.resources?.limits?.memory, where).toBeDefined();
    }
  });

  it('every command and flag in args is one biostore has', () => {
    const unknown: string[] = [];
    for (const { workload, c } of allContainers) {
      const where = `${workload.kind}/${workload.metadata.name}`;
      const [name, ...rest]: string[] = c.args ?? [];
      const cmd = program.commands.find((x) => x.name() === name);
      if (!cmd) {
        unknown.push(`${where}: no command ${name}`);
        continue;
      }
      const known = [...globalFlags, ...cmd.options.map((o) => o.long)];
      for (const flag of rest.filter((a) => a.startsWith('--'))) {
        if (!known.includes(flag.split('=')[0])) unknown.push(`${where}: ${name} has no ${flag}`);
      }
    }
    expect(unknown, `biostore has: ${commandNames.join(', ')}`).toEqual([]);
  });

  it('the init Job runs init-mongo, then init-buckets', () => {
    const job = one('Job');
    expect(job.spec.backoffLimit).toBe(3);
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    const order = containersOf(job).map((c) => c.args[0]);
    expect(order).toEqual(['init-mongo', 'init-buckets']);
    expect(['Never', 'OnFailure']).toContain(podSpec(job).restartPolicy);
  });

  describe('daemon', () => {
    it('is a 2-replica Deployment running `daemon` with both probes on the container port', () => {
      const d = one('Deployment');
      expect(d.spec.replicas).toBe(2);
      expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
      const spec = podSpec(d);
      expect(spec.terminationGracePeriodSeconds).toBe(30);
      expect(spec.containers).toHaveLength(1);
      const c = spec.containers[0];
      expect(c.args).toEqual(['daemon']);
      const port = c.ports.find((p: any) => p.containerPort === Number(VARS.PORT.default));
      expect(port, `containerPort ${VARS.PORT.default} (PORT default)`).toBeDefined();
      const onPort = (probe: any) => probe.httpGet.port === port.name || probe.httpGet.port === port.containerPort;
      expect(c.readinessProbe.httpGet.path).toBe('/readyz');
      expect(onPort(c.readinessProbe)).toBe(true);
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(onPort(c.livenessProbe)).toBe(true);
    });

    it('the Service and the PodDisruptionBudget select the daemon pods', () => {
      const d = one('Deployment');
      const labels = d.spec.template.metadata.labels;
      const c = podSpec(d).containers[0];
      const svc = one('Service');
      expect(svc.spec.type ?? 'ClusterIP').toBe('ClusterIP');
      expect(labels).toMatchObject(svc.spec.selector);
      expect(svc.spec.ports).toHaveLength(1);
      expect(svc.spec.ports[0].port).toBe(80);
      const target = svc.spec.ports[0].targetPort;
      expect(c.ports.some((p: any) => p.name === target || p.containerPort === target)).toBe(true);
      const pdb = one('PodDisruptionBudget');
      expect(pdb.spec.minAvailable).toBe(1);
      expect(pdb.spec.minAvailable).toBeLessThan(d.spec.replicas);
      expect(labels).toMatchObject(pdb.spec.selector.matchLabels);
    });
  });

  describe('CronJobs', () => {
    const cronJobs = ofKind('CronJob');
    const byCommand = (name: string) => cronJobs.find((j) => podSpec(j).containers[0].args[0] === name);

    it('archive-run at 03:00 and purge-run at 03:30', () => {
      expect(byCommand('archive-run')?.spec.schedule).toBe('0 3 * * *');
      expect(byCommand('purge-run')?.spec.schedule).toBe('30 3 * * *');
    });

    it('never overlap, give up in time, and run non-interactively with a JSON report', () => {
      expect(cronJobs.length).toBeGreaterThanOrEqual(2);
      for (const j of cronJobs) {
        const where = `CronJob/${j.metadata.name}`;
        expect(j.spec.schedule, where).toMatch(/^(\S+\s+){4}\S+$/);
        expect(j.spec.concurrencyPolicy, where).toBe('Forbid');
        expect(j.spec.startingDeadlineSeconds, where).toBeGreaterThan(0);
        expect(j.spec.successfulJobsHistoryLimit, where).toBeTypeOf('number');
        expect(j.spec.failedJobsHistoryLimit, where).toBeTypeOf('number');
        expect(j.spec.jobTemplate.spec.backoffLimit, where).toBe(2);
        expect(j.spec.jobTemplate.spec.activeDeadlineSeconds, where).toBeGreaterThan(0);
        expect(podSpec(j).restartPolicy, where).toBe('OnFailure');
        for (const c of containersOf(j)) {
          expect(c.args, where).toContain('--json');
          // purge-run (and archive-run) refuse to run without a terminal unless --yes.
          if (['archive-run', 'purge-run'].includes(c.args[0])) expect(c.args, where).toContain('--yes');
        }
      }
    });
  });

  describe('configuration', () => {
    const cm = one('ConfigMap');
    const data: Record<string, unknown> = cm.data;

    it('holds only variables biostore knows, every value a string', () => {
      for (const [key, value] of Object.entries(data)) {
        expect(key in VARS || NON_BIOSTORE_KEYS.has(key), `unknown ConfigMap key ${key}`).toBe(true);
        expect(value, key).toBeTypeOf('string');
      }
      expect(data.ENV).toBe('production');
      expect(data.MALLOC_ARENA_MAX).toBe('2');
    });

    it('holds no secret', () => {
      for (const key of Object.keys(data)) expect(NEVER_IN_CONFIGMAP.has(key), `${key} belongs in the Secret`).toBe(false);
    });

    it('is a valid biostore configuration', () => {
      const env = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, String(v)]));
      expect(() => loadConfig({ env, envFile: '/dev/null' })).not.toThrow();
    });

    it('turns off the daemon schedules that CronJobs run, and keeps the others', () => {
      expect(data.SCHEDULE_ARCHIVE).toBe('off');
      expect(data.SCHEDULE_PURGE).toBe('off');
      for (const k of ['SCHEDULE_RECONCILE', 'SCHEDULE_REHYDRATE']) expect(data[k] ?? 'default', k).not.toBe('off');
    });

    it('the Secret example holds only placeholders for secret variables', () => {
      const secrets = all.filter((m) => m.file === 'secret.example.yaml').map((m) => m.doc);
      expect(secrets).toHaveLength(1);
      const s = secrets[0];
      expect(s.kind).toBe('Secret');
      expect(s.metadata.name).toBe(SECRET);
      expect(s.data, 'use stringData').toBeUndefined();
      for (const [key, value] of Object.entries(s.stringData)) {
        expect(key in VARS, `unknown Secret key ${key}`).toBe(true);
        expect(value, key).toMatch(/change-me/);
      }
      for (const key of SECRET_VARS) if (key !== 'EMBEDDING_API_KEY') expect(Object.keys(s.stringData)).toContain(key);
      for (const key of Object.keys(s.stringData)) expect(key in data, `${key} in both`).toBe(false);
    });
  });
});
