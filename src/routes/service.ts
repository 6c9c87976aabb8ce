import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";

const health = createRoute({
	method: "get",
	path: "/healthz",
	tags: ["Service"],
	summary: "Liveness",
	responses: {
		200: { description: "OK", content: { "application/json": { schema: z.object({ ok: z.literal(true) }) } } },
	},
});

export const serviceRoutes = newRouter().openapi(health, (c) => c.json({ ok: true as const }, 200));
