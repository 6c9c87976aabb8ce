import { newRouter } from "../app";

export const storageRoutes = newRouter();
