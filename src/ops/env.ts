/**
 * The optional settings and bindings the operations code reads. They are optional on purpose: a Worker without
 * them (local dev, tests, a fresh deploy) runs, and the features they enable stay off.
 */
export type OpsEnv = Env & {
	/** Comma-separated backend names the cron keeps warm; empty or absent: off. */
	KEEP_WARM_BACKENDS?: string;
	/** Local hours the keep-warm runs, "8-20" (start inclusive, end exclusive); absent: all day. */
	KEEP_WARM_HOURS?: string;
	/** UTC offset of those hours: "+2", "-5", "+05:30". */
	KEEP_WARM_TZ_OFFSET?: string;
	/** Workers Analytics Engine dataset for per-job metrics (see wrangler.toml). */
	METRICS?: AnalyticsEngineDataset;
};
