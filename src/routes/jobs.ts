import { newRouter } from "../app";

export const jobsRoutes = newRouter();
