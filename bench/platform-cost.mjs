#!/usr/bin/env node
// Cloudflare's cost of one 5-minute Wan job beside its GPU cost at RunPod's H100 rate, from a count of the platform
// operations it causes (src/ops/platform-cost.ts), in its four cases: with and without RunPod's webhook, a client
// polling every 2 s or following the event stream. The same table as `npm run costs -- --per-job`.
import "./lib/typescript-imports.mjs";

const { perJobReport } = await import("../scripts/costs.mjs");
const report = perJobReport();
console.log("## Platform cost per job: a 5-minute Wan job on Cloudflare vs its GPU time\n");
for (const line of report.lines) console.log(line);
console.log(
	"\nCounts follow the code paths (src/ops/platform-cost.ts names each); the provider calls are /run plus the polls " +
		"the JobDO's own poll timing makes for a 300 s job queued 5 s (progress linear, throughput estimate exact, the " +
		"webhook delivered). Assumed: Worker-signed URLs (R2-presigned ones take 3 Worker and 1 DO request off), 2 ms " +
		"of Worker CPU per request, 5 ms of Durable Object activity per call, a 0.5 MB input and a 5 MB video kept 30 " +
		"days. Rates: Workers $0.30/M requests and $0.02/M CPU-ms, Durable Objects $0.15/M requests and $12.50/M GB-s " +
		"(128 MB), SQLite and D1 $0.001/M rows read and $1.00/M rows written, R2 $4.50/M Class A, $0.36/M Class B, " +
		"$0.015/GB-month (developers.cloudflare.com: workers/platform/pricing, durable-objects/platform/pricing, " +
		"d1/platform/pricing, r2/pricing), beyond the plans' included usage; GPU: RunPod Serverless H100 PRO flex " +
		"$0.00116/s (https://docs.runpod.io/serverless/pricing). The event stream costs more than polling: it keeps the " +
		"JobDO active (billed duration) for the job's whole life.",
);
