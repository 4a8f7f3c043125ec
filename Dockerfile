# Chorus API and workers. Node 24 runs the TypeScript sources directly: no build step.
FROM node:24-bookworm-slim
WORKDIR /app
# The sources come first: npm ci runs `prepare`, which generates api/openapi.d.ts from api/openapi.yaml.
COPY . .
RUN npm ci --no-audit --no-fund && npm cache clean --force && mkdir -p /app/data && chown node:node /app/data
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 CHORUS_DATA_DIR=/app/data
EXPOSE 3000
USER node
ENTRYPOINT ["node", "cli/main.ts"]
CMD ["serve", "--no-workers"]
