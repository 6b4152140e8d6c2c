#!/usr/bin/env python3
"""Checks the deployment files without a Docker engine or a Kubernetes cluster.

    python3 scripts/validate-deploy.py          (needs PyYAML: Debian python3-yaml)

- compose.yaml and every deploy/k8s/*.yaml parse (PyYAML, merge keys and anchors resolved);
- compose: two gateways (`serve`) behind the proxy, two workers, Redis with AOF,
  PostgreSQL with wal_level=logical, files it mounts exist;
- Kubernetes: every document has apiVersion/kind/metadata.name; kustomization resources
  exist; Deployment selectors match their pod labels; the Service selects the gateway pods;
  every configMapRef/secretRef names a ConfigMap/Secret defined here; the HPA targets the
  worker Deployment and asks for the external metric the Prometheus adapter rule defines,
  built from a metric the code exports;
- every environment variable set anywhere is one Tributary reads (src/config/config.ts
  ENV_VARS) or a documented extra (NODE_ENV);
- container commands are tributary commands;
- nginx: `nginx -t` on deploy/nginx/nginx.conf when nginx is installed (apt-get install
  nginx-light), with the compose service names resolving to loopback in a private mount
  namespace (unshare -m) so the file is tested unchanged.
Exits 1 on the first list of problems.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []
checked = []


def fail(msg):
    problems.append(msg)


def load_all(rel):
    with open(os.path.join(ROOT, rel), encoding='utf8') as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    checked.append(f'{rel}: {len(docs)} document(s) parsed')
    return docs


def env_vars_of_config():
    src = open(os.path.join(ROOT, 'src/config/config.ts'), encoding='utf8').read()
    block = src[src.index('export const ENV_VARS'):]
    block = block[:block.index('} as const')]
    names = set(re.findall(r":\s*'([A-Z0-9_]+)'", block))
    names.update({'TRIBUTARY_CONFIG', 'NODE_ENV'})
    return names


KNOWN_ENV = env_vars_of_config()
COMMANDS = {'start', 'serve', 'worker', 'migrate', 'token', 'demo', 'print-schema'}


def check_env(where, names):
    for n in names:
        if n not in KNOWN_ENV:
            fail(f'{where}: environment variable {n} is not one Tributary reads')


# ---------------------------------------------------------------- compose
compose = load_all('compose.yaml')[0]
services = compose.get('services', {})
gateways = [n for n, s in services.items() if s.get('command') == ['serve']]
if len(gateways) != 2:
    fail(f'compose: expected two gateway services running `serve`, found {gateways}')
workers = [(n, (s.get('deploy') or {}).get('replicas', 1)) for n, s in services.items() if (s.get('command') or [None])[0] == 'worker']
if sum(r for _, r in workers) != 2:
    fail(f'compose: expected two workers in all, found {workers}')
redis_cmd = ' '.join(services.get('redis', {}).get('command', []))
if '--appendonly yes' not in redis_cmd:
    fail('compose: redis runs without --appendonly yes')
if 'wal_level=logical' not in ' '.join(services.get('postgres', {}).get('command', [])):
    fail('compose: postgres lacks wal_level=logical')
for name, svc in services.items():
    env = svc.get('environment') or {}
    if svc.get('image', '').startswith('tributary'):
        check_env(f'compose service {name}', env.keys() if isinstance(env, dict) else [e.split('=')[0] for e in env])
    cmd = svc.get('command')
    if svc.get('image', '').startswith('tributary') and isinstance(cmd, list) and svc.get('entrypoint') is None and cmd[0] not in COMMANDS:
        fail(f'compose service {name}: {cmd[0]} is not a tributary command')
    for v in svc.get('volumes', []) or []:
        src = v.split(':')[0]
        if src.startswith('.') and not os.path.exists(os.path.join(ROOT, src)):
            fail(f'compose service {name}: mounted file {src} does not exist')
    for dep in (svc.get('depends_on') or {}):
        if dep not in services:
            fail(f'compose service {name}: depends on unknown service {dep}')
        if dep == name:
            fail(f'compose service {name}: depends on itself')
nginx_conf = open(os.path.join(ROOT, 'deploy/nginx/nginx.conf'), encoding='utf8').read()
for g in gateways:
    if f'server {g}:8190' not in nginx_conf:
        fail(f'nginx.conf: upstream lacks {g}:8190')
if 'proxy_set_header Upgrade $http_upgrade' not in nginx_conf:
    fail('nginx.conf: no WebSocket upgrade for /graphql')
checked.append(f'compose: gateways {gateways}, workers {workers}, redis AOF, postgres wal_level=logical')

# ---------------------------------------------------------------- kubernetes
K8S = 'deploy/k8s'
kust = load_all(f'{K8S}/kustomization.yaml')[0]
docs = []
for res in kust['resources']:
    if not os.path.exists(os.path.join(ROOT, K8S, res)):
        fail(f'kustomization: resource {res} does not exist')
        continue
    docs += [(res, d) for d in load_all(f'{K8S}/{res}')]
extra = {f: load_all(f'{K8S}/{f}') for f in sorted(os.listdir(os.path.join(ROOT, K8S))) if f.endswith('.yaml') and f not in kust['resources'] and f != 'kustomization.yaml'}

by_kind = {}
for res, d in docs + [(f, d) for f, ds in extra.items() for d in ds if 'kind' in d]:
    for key in ('apiVersion', 'kind'):
        if key not in d:
            fail(f'{res}: a document lacks {key}')
    if not (d.get('metadata') or {}).get('name'):
        fail(f'{res}: {d.get("kind")} without metadata.name')
    by_kind.setdefault(d.get('kind'), {})[d['metadata']['name']] = d

configmaps = by_kind.get('ConfigMap', {})
secrets = by_kind.get('Secret', {})
for cm in configmaps.values():
    check_env(f'ConfigMap {cm["metadata"]["name"]}', (cm.get('data') or {}).keys())
for s in secrets.values():
    check_env(f'Secret {s["metadata"]["name"]}', list((s.get('stringData') or {}).keys()) + list((s.get('data') or {}).keys()))


def pod_specs():
    for kind in ('Deployment', 'Job'):
        for name, d in by_kind.get(kind, {}).items():
            yield kind, name, d, d['spec']['template']


for kind, name, d, tmpl in pod_specs():
    labels = tmpl['metadata'].get('labels', {})
    if kind == 'Deployment':
        sel = d['spec']['selector']['matchLabels']
        if any(labels.get(k) != v for k, v in sel.items()):
            fail(f'Deployment {name}: selector {sel} does not match pod labels {labels}')
    for c in tmpl['spec']['containers']:
        for ref in c.get('envFrom', []):
            if 'configMapRef' in ref and ref['configMapRef']['name'] not in configmaps:
                fail(f'{kind} {name}: ConfigMap {ref["configMapRef"]["name"]} is not defined')
            if 'secretRef' in ref and ref['secretRef']['name'] not in secrets:
                fail(f'{kind} {name}: Secret {ref["secretRef"]["name"]} is not defined')
        check_env(f'{kind} {name}', [e['name'] for e in c.get('env', [])])
        args = c.get('args') or []
        if kind == 'Deployment' and (not args or args[0] not in COMMANDS):
            fail(f'Deployment {name}: args {args} do not start with a tributary command')

gw = by_kind.get('Deployment', {}).get('tributary-gateway')
svc = by_kind.get('Service', {}).get('tributary-gateway')
if not gw or not svc:
    fail('k8s: gateway Deployment or Service missing')
else:
    labels = gw['spec']['template']['metadata']['labels']
    if any(labels.get(k) != v for k, v in svc['spec']['selector'].items()):
        fail('Service tributary-gateway does not select the gateway pods')
    ports = {p['name'] for c in gw['spec']['template']['spec']['containers'] for p in c.get('ports', [])}
    for p in svc['spec']['ports']:
        if p['targetPort'] not in ports:
            fail(f'Service tributary-gateway: targetPort {p["targetPort"]} is not a container port')
if 'tributary-worker' not in by_kind.get('Deployment', {}):
    fail('k8s: worker Deployment missing')

hpa = by_kind.get('HorizontalPodAutoscaler', {}).get('tributary-worker')
adapter = extra['prometheus-adapter-values.yaml'][0]
if not hpa:
    fail('k8s: worker HPA missing')
else:
    ref = hpa['spec']['scaleTargetRef']
    if ref['kind'] != 'Deployment' or ref['name'] not in by_kind.get('Deployment', {}):
        fail(f'HPA targets {ref}, which is not a Deployment here')
    wanted = [m['external']['metric']['name'] for m in hpa['spec']['metrics'] if m['type'] == 'External']
    rules = adapter['rules']['external']
    provided = {r['name']['as'] for r in rules}
    for w in wanted:
        if w not in provided:
            fail(f'HPA asks for external metric {w}; the adapter rules provide {provided}')
    metrics_src = open(os.path.join(ROOT, 'src/observability/metrics.ts'), encoding='utf8').read()
    for r in rules:
        base = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)', r['seriesQuery']).group(1)
        if f"name: '{base}'" not in metrics_src:
            fail(f'adapter rule reads {base}, which src/observability/metrics.ts does not export')
    checked.append(f'HPA -> Deployment {ref["name"]}, external metric(s) {wanted} provided by the adapter rule from tributary_queue_jobs')

# ---------------------------------------------------------------- nginx -t
nginx = shutil.which('nginx')
if not nginx:
    checked.append('nginx -t: SKIPPED (nginx not installed; apt-get install -y nginx-light)')
else:
    conf = os.path.join(ROOT, 'deploy/nginx/nginx.conf')
    with tempfile.NamedTemporaryFile('w', suffix='.hosts', delete=False) as h:
        h.write('127.0.0.1 localhost\n' + ''.join(f'127.0.0.1 {g}\n' for g in gateways))
    script = f'mount --bind {h.name} /etc/hosts && {nginx} -t -q -c {conf}'
    r = subprocess.run(['unshare', '-m', 'sh', '-c', script], capture_output=True, text=True)
    os.unlink(h.name)
    if r.returncode != 0:
        fail(f'nginx -t failed: {r.stderr.strip()}')
    else:
        checked.append(f'nginx -t: deploy/nginx/nginx.conf OK ({subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()})')

for c in checked:
    print(f'ok   {c}')
for p in problems:
    print(f'FAIL {p}')
print(f'{len(problems)} problem(s)')
sys.exit(1 if problems else 0)
