# syntax=docker/dockerfile:1
#
# Tributary image: one image for every role (`start`, `serve`, `worker [--cluster N]`,
# `migrate`, `token ...`). tsx runs the TypeScript sources at runtime (bin/tributary.js
# registers it), so there is no compile step: the build stage only installs the
# production dependencies (tsx is one of them) and the runtime stage copies them
# next to the sources.
#
#   docker build -t tributary:local .
#   docker run --rm tributary:local --help
#
# Verified here without a Docker engine by running these steps by hand; see docs/deploy.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- dependencies
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# No dev dependencies (typescript, vitest, playwright-core, @types/*). Native add-ons
# (msgpackr-extract) come as prebuilt binaries, so no compiler is needed.
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8190 \
    TRIBUTARY_SECRET_KEY_FILE=/var/lib/tributary/secret.key
# Node runs as PID 1: the CLI installs its own SIGTERM/SIGINT handlers (drain HTTP,
# close subscriptions, hand running tasks back, close stores), and spawns no children.
RUN mkdir -p /var/lib/tributary && chown node:node /var/lib/tributary
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json tsconfig.json ./
COPY --chown=node:node bin ./bin
COPY --chown=node:node src ./src
COPY --chown=node:node schema ./schema
USER node
EXPOSE 8190
# No HEALTHCHECK here: workers serve no HTTP. Gateways are probed on /ready by
# compose.yaml and the Kubernetes manifests.
# A larger young generation: the change path allocates short-lived objects per change, and GC took
# about a fifth of the worker's CPU with the default (docs/benchmarks.md, "Where the time goes").
ENTRYPOINT ["node", "--max-semi-space-size=32", "--heap-growing-percent=50", "bin/tributary.js"]
CMD ["start"]
