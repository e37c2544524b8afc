# syntax=docker/dockerfile:1
# The rlhf image (CPU): one image for every component, `rlhf controller` or `rlhf serve <service>`.
#   docker build -t rlhf:dev .
# GPU nodes use Dockerfile.cuda (same layout, plus ONNX Runtime's CUDA provider).
# The sources are TypeScript run through tsx: there is no build step, so the image carries src/ as is.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# Workspaces need every package.json before `npm ci`; copying the tree (minus .dockerignore) keeps the list
# of services out of this file. .npmrc makes onnxruntime-node skip its CUDA download (the CPU runtime ships
# in the npm package).
COPY . .
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    RLHF_MODEL_CACHE=/var/cache/rlhf/models \
    RLHF_WORK_DIR=/var/cache/rlhf/work
WORKDIR /app
# Root-owned and read-only to the runtime user; writable paths are /tmp and /var/cache/rlhf (volumes).
COPY --from=deps /app /app
RUN groupadd --gid 10001 rlhf \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin rlhf \
 && mkdir -p /var/cache/rlhf && chown 10001:10001 /var/cache/rlhf \
 && chmod 0755 /app/services/cli/bin/rlhf.mjs \
 && ln -s /app/services/cli/bin/rlhf.mjs /usr/local/bin/rlhf
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["rlhf"]
CMD ["--help"]
