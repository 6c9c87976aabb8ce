import { installBaseMiddleware, installFallbacks, newRouter } from "./app";
import { declareCommonProblems } from "./openapi/common-problems";
import { describeForReference } from "./openapi/reference";
import { accountsRoutes } from "./routes/accounts";
import { adminModelFilesRoutes } from "./routes/admin-model-files";
import { adminModelsRoutes } from "./routes/admin-models";
import { backendsRoutes } from "./routes/backends";
import { docsRoutes } from "./routes/docs";
import { internalRoutes } from "./routes/internal";
import { jobEventsRoutes } from "./routes/job-events";
import { jobLogsRoutes } from "./routes/job-logs";
import { jobsRoutes } from "./routes/jobs";
import { keysRoutes } from "./routes/keys";
import { modelsRoutes } from "./routes/models";
import { serviceRoutes } from "./routes/service";
import { shareRoutes } from "./routes/share";
import { statsRoutes } from "./routes/stats";
import { storageRoutes } from "./routes/storage";
import { uploadsRoutes } from "./routes/uploads";
import { inlineUploadRoutes } from "./routes/uploads-inline";
import { usageRoutes } from "./routes/usage";
import { webhooksRoutes } from "./routes/webhooks";
import { runScheduled } from "./scheduled";

export { BackendDO } from "../durable-objects/backend";
export { JobDO } from "../durable-objects/job/job-do";
export { RateLimiterDO } from "../durable-objects/rate-limiter";

export const app = newRouter();
installBaseMiddleware(app);
app.route("/", serviceRoutes);
app.route("/", docsRoutes);
app.route("/", keysRoutes);
app.route("/", backendsRoutes);
app.route("/", uploadsRoutes);
app.route("/", inlineUploadRoutes);
app.route("/", storageRoutes);
app.route("/", modelsRoutes);
app.route("/", adminModelsRoutes);
app.route("/", adminModelFilesRoutes);
app.route("/", jobsRoutes);
app.route("/", jobEventsRoutes);
app.route("/", jobLogsRoutes);
app.route("/", shareRoutes);
app.route("/", webhooksRoutes);
app.route("/", usageRoutes);
app.route("/", accountsRoutes);
app.route("/", statsRoutes);
app.route("/", internalRoutes);

app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
	type: "http",
	scheme: "bearer",
	description: "An API key (`rg_live_…`) from `POST /v1/admin/keys` or `npm run keys -- create`.",
});
app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", {
	type: "http",
	scheme: "bearer",
	description: "The ADMIN_TOKEN Worker secret.",
});
declareCommonProblems(app.openAPIRegistry);
const DOCUMENT = {
	openapi: "3.1.0",
	info: {
		title: "Reelgate API",
		version: "1.0.0",
		description: "Upload an image (and audio), start a video job on a GPU backend, follow it, download the video.",
	},
	servers: [{ url: "/" }],
};
app.get("/openapi.json", (c) => c.json(describeForReference(app.getOpenAPI31Document(DOCUMENT))));
installFallbacks(app);

export default {
	fetch: app.fetch,
	scheduled: (controller, env, ctx) => {
		ctx.waitUntil(runScheduled(env, controller.scheduledTime));
	},
} satisfies ExportedHandler<Env>;
