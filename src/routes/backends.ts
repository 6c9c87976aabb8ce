import { newRouter } from "../app";

export const backendsRoutes = newRouter();
