import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { modelAvailability } from "../backends/routing";
import type { AppEnv } from "../env";
import { notFound, problemResponses } from "../errors";
import { findModel, listModels } from "../models/catalog";
import { MODEL_ID } from "../models/manifest";
import { ModelSchema, toModelView } from "../models/view";

const security = [{ apiKey: [] }];

export const ModelIdParamSchema = z.object({
	id: z
		.string()
		.max(64)
		.openapi({ param: { name: "id", in: "path" }, example: "wan2.2-i2v" }),
});

const listRoute = createRoute({
	method: "get",
	path: "/v1/models",
	tags: ["Models"],
	summary: "The models a job can name, with their inputs, parameter schemas, limits and availability",
	security,
	middleware: [requireKey("jobs:read")] as const,
	responses: {
		200: {
			description: "The catalog",
			content: { "application/json": { schema: z.object({ data: z.array(ModelSchema) }).openapi("ModelList") } },
		},
		...problemResponses(401, 403),
	},
});

const getRoute = createRoute({
	method: "get",
	path: "/v1/models/{id}",
	tags: ["Models"],
	summary: "One model",
	security,
	middleware: [requireKey("jobs:read")] as const,
	request: { params: ModelIdParamSchema },
	responses: {
		200: { description: "The model", content: { "application/json": { schema: ModelSchema } } },
		...problemResponses(401, 403, 404),
	},
});

const originOf = (c: Context<AppEnv>) => new URL(c.req.url).origin;

export const modelsRoutes = newRouter()
	.openapi(listRoute, async (c) => {
		const models = await listModels(c.env);
		const availability = await modelAvailability(c.env, models);
		const origin = originOf(c);
		const data = models.map((m) =>
			toModelView(m, availability.get(m.id) ?? { available: false, served: false, kinds: [] }, origin),
		);
		return c.json({ data }, 200);
	})
	.openapi(getRoute, async (c) => {
		const { id } = c.req.valid("param");
		const model = MODEL_ID.test(id) ? await findModel(c.env, id) : null;
		if (!model) throw notFound(`Model ${JSON.stringify(id)}`);
		const availability = (await modelAvailability(c.env, [model])).get(model.id) ?? {
			available: false,
			served: false,
			kinds: [],
		};
		return c.json(toModelView(model, availability, originOf(c)), 200);
	});
