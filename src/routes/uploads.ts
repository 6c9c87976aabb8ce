import { newRouter } from "../app";

export const uploadsRoutes = newRouter();
