/** Runs a statement and returns its rows (typed by the caller). All D1 access goes through these helpers. */
export async function all<T>(db: D1Database, sql: string, ...params: unknown[]): Promise<T[]> {
	const { results } = await db
		.prepare(sql)
		.bind(...params)
		.all<T>();
	return results;
}

export async function first<T>(db: D1Database, sql: string, ...params: unknown[]): Promise<T | null> {
	return db
		.prepare(sql)
		.bind(...params)
		.first<T>();
}

export async function run(db: D1Database, sql: string, ...params: unknown[]): Promise<D1Result> {
	return db
		.prepare(sql)
		.bind(...params)
		.run();
}
