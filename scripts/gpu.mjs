#!/usr/bin/env node
// `npm run gpu -- <target> <command>`: deploys the GPU worker and registers it as a Reelgate backend.
//   runpod  RunPod Serverless: template + network volume + endpoint (REST API), backend kind `runpod`
//   pod     a RunPod Pod running the worker in pod mode, backend kind `pod`
//   vastai  a vast.ai template (image, env, onstart) and, with --offer, an instance; backend kind `pod`
// Commands: deploy, status, scale, destroy, register. Secrets come from the environment and are never printed.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { HttpError, mask } from "./lib/http-json.mjs";
import { reelgateAdmin } from "./lib/reelgate-admin.mjs";
import { RUNPOD_REST_BASE, runpodRest, upsert } from "./lib/runpod-rest.mjs";
import { dockerFlags, instanceUrl, VASTAI_BASE, vastaiRest } from "./lib/vastai-rest.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `Usage: npm run gpu -- <runpod|pod|vastai> <deploy|status|scale|destroy|register> [options]

Common options:
  --name NAME            resource and backend name (default: reelgate)
  --image IMAGE          worker image (or REELGATE_WORKER_IMAGE)
  --gpu TYPE             RunPod GPU type id, repeatable (default: the 80 GB+ types of gpu-worker/.runpod/hub.json)
  --models LIST          ENABLED_MODELS (default: preview,wan2.2-i2v,wan2.2-s2v)
  --container-disk GB    container disk (default: 40)
  --volume-size GB       network volume size (default: 120)
  --datacenter ID        network volume data center (default: EU-RO-1)
  --price-per-second USD price recorded on the Reelgate backend, for job costs
runpod: --min N --max N --idle-timeout S --scaler QUEUE_DELAY|REQUEST_COUNT --scaler-value N --flashboot
        --execution-timeout-ms MS; destroy --with-volume also deletes the network volume (the models on it)
pod:    scale --stop | --start
vastai: deploy --offer ID rents that offer with the template; status/destroy --instance ID
Environment: RUNPOD_API_KEY (runpod, pod), VAST_API_KEY (vastai), REELGATE_URL + ADMIN_TOKEN (registration),
  RUNPOD_ENDPOINT_API_KEY (optional: a narrower key for Reelgate to call the endpoint with),
  RUNPOD_REST_URL / VASTAI_URL / RUNPOD_PROXY_DOMAIN (other API hosts, e.g. for tests).`;

const OPTIONS = {
	name: { type: "string", default: "reelgate" },
	image: { type: "string" },
	gpu: { type: "string", multiple: true },
	models: { type: "string", default: "preview,wan2.2-i2v,wan2.2-s2v" },
	"container-disk": { type: "string", default: "40" },
	"volume-size": { type: "string", default: "120" },
	datacenter: { type: "string", default: "EU-RO-1" },
	"price-per-second": { type: "string" },
	min: { type: "string" },
	max: { type: "string" },
	"idle-timeout": { type: "string", default: "300" },
	scaler: { type: "string", default: "QUEUE_DELAY" },
	"scaler-value": { type: "string", default: "4" },
	flashboot: { type: "boolean", default: false },
	"execution-timeout-ms": { type: "string", default: "3600000" },
	"with-volume": { type: "boolean", default: false },
	stop: { type: "boolean", default: false },
	start: { type: "boolean", default: false },
	offer: { type: "string" },
	instance: { type: "string" },
	help: { type: "boolean", short: "h", default: false },
};

/** A mistake in how the command was called or configured: printed without a stack, exit 2. */
export class UsageError extends Error {}

/** The GPU types of the hub manifest, as RunPod REST ids (the manifest uses the older pool names). */
export function defaultGpuTypes() {
	const pools = { ADA_80_PRO: "NVIDIA H100 80GB HBM3", AMPERE_80: "NVIDIA A100 80GB PCIe", HOPPER_141: "NVIDIA H200" };
	try {
		const hub = JSON.parse(readFileSync(path.join(ROOT, "gpu-worker", ".runpod", "hub.json"), "utf8"));
		const ids = String(hub.config?.gpuIds ?? "")
			.split(",")
			.map((p) => pools[p.trim()])
			.filter(Boolean);
		if (ids.length) return ids;
	} catch {}
	return Object.values(pools);
}

function int(value, flag, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
	const n = Number(value);
	if (!Number.isInteger(n) || n < min || n > max)
		throw new UsageError(`--${flag} must be an integer ${min}..${max}, got "${value}".`);
	return n;
}

function need(env, name, why) {
	const v = env[name];
	if (!v) throw new UsageError(`${name} is not set: ${why}\n  export ${name}=...`);
	return v;
}

function image(opts, env) {
	const img = opts.image ?? env.REELGATE_WORKER_IMAGE;
	if (!img)
		throw new UsageError(
			"No worker image: pass --image <registry/repo:tag> or set REELGATE_WORKER_IMAGE (build it from gpu-worker/Dockerfile).",
		);
	return img;
}

/** Registers the backend, or says how to once REELGATE_URL and ADMIN_TOKEN are set. */
async function register(ctx, name, body) {
	const admin = reelgateAdmin(ctx.env, ctx.fetch);
	if (!admin) {
		ctx.log(
			`! Not registered with Reelgate: set REELGATE_URL and ADMIN_TOKEN, then run \`npm run gpu -- ${ctx.target} register --name ${name}\`.`,
		);
		return false;
	}
	const price = ctx.opts["price-per-second"];
	if (price !== undefined) {
		const p = Number(price);
		if (!(p >= 0)) throw new UsageError(`--price-per-second must be a number ≥ 0, got "${price}".`);
		body.price_per_second_usd = p;
	}
	const models = ctx.opts.models
		.split(",")
		.map((m) => m.trim())
		.filter(Boolean);
	await admin.putBackend(name, { ...body, models });
	ctx.log(`✓ Registered backend "${name}" (kind ${body.kind}) at ${ctx.env.REELGATE_URL}`);
	return true;
}

// ── RunPod Serverless ────────────────────────────────────────────────────────────────────────────────────────

function runpodClient(ctx) {
	const apiKey = need(
		ctx.env,
		"RUNPOD_API_KEY",
		"create one at https://www.runpod.io/console/user/settings (read/write).",
	);
	return runpodRest({ apiKey, base: ctx.env.RUNPOD_REST_URL || RUNPOD_REST_BASE, fetch: ctx.fetch });
}

async function ensureVolume(ctx, rp) {
	const name = `${ctx.opts.name}-models`;
	const size = int(ctx.opts["volume-size"], "volume-size", { min: 10, max: 4000 });
	const { resource, action } = await upsert({
		find: () => rp.findVolume(name),
		create: () => rp.createVolume({ name, size, dataCenterId: ctx.opts.datacenter }),
		// A network volume can grow, never shrink: only a larger size is sent.
		update: (v) => (v.size < size ? rp.updateVolume(v.id, { size }) : null),
	});
	ctx.log(
		`✓ Network volume "${name}" ${action} (${resource.id}, ${resource.size ?? size} GB, ${resource.dataCenterId ?? ctx.opts.datacenter})`,
	);
	return resource;
}

function workerEnv(ctx, mode, extra = {}) {
	return { DEPLOYMENT_MODE: mode, ENABLED_MODELS: ctx.opts.models, ...extra };
}

async function runpodDeploy(ctx) {
	const rp = runpodClient(ctx);
	const img = image(ctx.opts, ctx.env);
	const disk = int(ctx.opts["container-disk"], "container-disk", { min: 10, max: 500 });
	const volume = await ensureVolume(ctx, rp);
	const tplName = `${ctx.opts.name}-worker`;
	const tplBody = { imageName: img, containerDiskInGb: disk, env: workerEnv(ctx, "serverless") };
	const tpl = await upsert({
		find: () => rp.findTemplate(tplName),
		create: () => rp.createTemplate({ name: tplName, isServerless: true, category: "NVIDIA", ...tplBody }),
		update: (t) => rp.updateTemplate(t.id, tplBody),
	});
	ctx.log(`✓ Template "${tplName}" ${tpl.action} (${tpl.resource.id}, ${img})`);
	const min = int(ctx.opts.min ?? "0", "min", { max: 100 });
	const max = int(ctx.opts.max ?? "3", "max", { min: Math.max(1, min), max: 100 });
	const epBody = {
		templateId: tpl.resource.id,
		gpuTypeIds: ctx.opts.gpu?.length ? ctx.opts.gpu : defaultGpuTypes(),
		gpuCount: 1,
		workersMin: min,
		workersMax: max,
		idleTimeout: int(ctx.opts["idle-timeout"], "idle-timeout", { min: 1, max: 3600 }),
		scalerType: ctx.opts.scaler,
		scalerValue: int(ctx.opts["scaler-value"], "scaler-value", { min: 1, max: 1000 }),
		networkVolumeId: volume.id,
		flashboot: ctx.opts.flashboot,
		executionTimeoutMs: int(ctx.opts["execution-timeout-ms"], "execution-timeout-ms", { min: 1000 }),
	};
	if (!["QUEUE_DELAY", "REQUEST_COUNT"].includes(epBody.scalerType))
		throw new UsageError("--scaler is QUEUE_DELAY or REQUEST_COUNT.");
	const ep = await upsert({
		find: () => rp.findEndpoint(ctx.opts.name),
		create: () => rp.createEndpoint({ name: ctx.opts.name, ...epBody }),
		update: (e) => rp.updateEndpoint(e.id, epBody),
	});
	ctx.log(
		`✓ Endpoint "${ctx.opts.name}" ${ep.action} (${ep.resource.id}; workers ${min}..${max}, idle ${epBody.idleTimeout}s, ${epBody.gpuTypeIds.join(" / ")})`,
	);
	await registerRunpod(ctx, ep.resource.id);
	ctx.log(`Fill the volume with the models once (see docs/operations.md), then send a job.`);
	return { endpointId: ep.resource.id, templateId: tpl.resource.id, volumeId: volume.id };
}

async function registerRunpod(ctx, endpointId) {
	const apiKey = ctx.env.RUNPOD_ENDPOINT_API_KEY || ctx.env.RUNPOD_API_KEY;
	return register(ctx, ctx.opts.name, { kind: "runpod", config: { endpoint_id: endpointId, api_key: apiKey } });
}

async function runpodEndpoint(ctx, rp) {
	const ep = await rp.findEndpoint(ctx.opts.name);
	if (!ep)
		throw new UsageError(`No RunPod endpoint named "${ctx.opts.name}": run \`npm run gpu -- runpod deploy\` first.`);
	return ep;
}

async function runpodStatus(ctx) {
	const rp = runpodClient(ctx);
	const ep = await rp.getEndpoint((await runpodEndpoint(ctx, rp)).id);
	const workers = Array.isArray(ep.workers) ? ep.workers : [];
	ctx.log(`Endpoint "${ep.name}" (${ep.id})`);
	ctx.log(
		`  workers: min ${ep.workersMin}, max ${ep.workersMax}, running ${workers.length}; idle timeout ${ep.idleTimeout}s`,
	);
	ctx.log(`  scaler: ${ep.scalerType} ${ep.scalerValue}; GPUs: ${(ep.gpuTypeIds ?? []).join(" / ")}`);
	ctx.log(`  template: ${ep.templateId}; network volume: ${ep.networkVolumeId ?? "none"}`);
	for (const w of workers) ctx.log(`  - ${w.id}: ${w.desiredStatus ?? "?"} ${w.costPerHr ? `$${w.costPerHr}/h` : ""}`);
	return ep;
}

async function runpodScale(ctx) {
	const rp = runpodClient(ctx);
	const ep = await runpodEndpoint(ctx, rp);
	if (ctx.opts.min === undefined && ctx.opts.max === undefined) throw new UsageError("scale needs --min and/or --max.");
	const min = ctx.opts.min === undefined ? ep.workersMin : int(ctx.opts.min, "min", { max: 100 });
	const max = ctx.opts.max === undefined ? ep.workersMax : int(ctx.opts.max, "max", { max: 100 });
	if (min > max) throw new UsageError(`--min (${min}) is above --max (${max}).`);
	await rp.updateEndpoint(ep.id, { workersMin: min, workersMax: max });
	ctx.log(`✓ Endpoint "${ep.name}" scaled: workers ${min}..${max}`);
	return { min, max };
}

async function runpodDestroy(ctx) {
	const rp = runpodClient(ctx);
	const admin = reelgateAdmin(ctx.env, ctx.fetch);
	if (admin && (await admin.deleteBackend(ctx.opts.name)))
		ctx.log(`✓ Backend "${ctx.opts.name}" removed from Reelgate`);
	const ep = await rp.findEndpoint(ctx.opts.name);
	if (ep) {
		// Workers first: an endpoint is deleted only once it runs none.
		await rp.updateEndpoint(ep.id, { workersMin: 0, workersMax: 0 });
		await rp.deleteEndpoint(ep.id);
		ctx.log(`✓ Endpoint "${ctx.opts.name}" deleted (${ep.id})`);
	} else ctx.log(`- No endpoint "${ctx.opts.name}"`);
	const tpl = await rp.findTemplate(`${ctx.opts.name}-worker`);
	if (tpl) {
		await rp.deleteTemplate(tpl.id);
		ctx.log(`✓ Template "${tpl.name}" deleted`);
	}
	const vol = await rp.findVolume(`${ctx.opts.name}-models`);
	if (vol && ctx.opts["with-volume"]) {
		await rp.deleteVolume(vol.id);
		ctx.log(`✓ Network volume "${vol.name}" deleted`);
	} else if (vol) ctx.log(`- Network volume "${vol.name}" kept (it holds the models; --with-volume deletes it)`);
}

// ── RunPod Pod (pod mode) ────────────────────────────────────────────────────────────────────────────────────

/** RunPod's HTTP proxy: a pod's port P answers at https://{podId}-P.proxy.runpod.net. */
export function podUrl(podId, env = process.env, port = 8000) {
	const domain = env.RUNPOD_PROXY_DOMAIN || "proxy.runpod.net";
	return domain.startsWith("http") ? `${domain.replace(/\/+$/, "")}/${podId}` : `https://${podId}-${port}.${domain}`;
}

async function podDeploy(ctx) {
	const rp = runpodClient(ctx);
	const img = image(ctx.opts, ctx.env);
	const volume = await ensureVolume(ctx, rp);
	// A fresh token per deploy, handed to the pod and to Reelgate directly: it is never shown.
	const token = randomBytes(24).toString("base64url");
	const body = {
		imageName: img,
		gpuTypeIds: ctx.opts.gpu?.length ? ctx.opts.gpu : defaultGpuTypes(),
		gpuCount: 1,
		containerDiskInGb: int(ctx.opts["container-disk"], "container-disk", { min: 10, max: 500 }),
		networkVolumeId: volume.id,
		volumeMountPath: "/workspace",
		ports: ["8000/http"],
		env: workerEnv(ctx, "pod", { POD_PORT: "8000", POD_API_TOKEN: token }),
	};
	const pod = await upsert({
		find: () => rp.findPod(ctx.opts.name),
		create: () => rp.createPod({ name: ctx.opts.name, ...body }),
		update: (p) =>
			rp.updatePod(p.id, {
				imageName: body.imageName,
				env: body.env,
				containerDiskInGb: body.containerDiskInGb,
				ports: body.ports,
			}),
	});
	const url = podUrl(pod.resource.id, ctx.env);
	ctx.log(`✓ Pod "${ctx.opts.name}" ${pod.action} (${pod.resource.id}) → ${url}`);
	await register(ctx, ctx.opts.name, { kind: "pod", config: { url, token } });
	return { podId: pod.resource.id, url };
}

async function findPodOrFail(ctx, rp) {
	const pod = await rp.findPod(ctx.opts.name);
	if (!pod) throw new UsageError(`No pod named "${ctx.opts.name}": run \`npm run gpu -- pod deploy\` first.`);
	return pod;
}

async function podStatus(ctx) {
	const rp = runpodClient(ctx);
	const pod = await rp.getPod((await findPodOrFail(ctx, rp)).id);
	ctx.log(`Pod "${pod.name}" (${pod.id}): ${pod.desiredStatus ?? "?"}${pod.costPerHr ? `, $${pod.costPerHr}/h` : ""}`);
	ctx.log(`  url: ${podUrl(pod.id, ctx.env)}; image: ${pod.imageName ?? "?"}`);
	return pod;
}

async function podScale(ctx) {
	const rp = runpodClient(ctx);
	const pod = await findPodOrFail(ctx, rp);
	if (ctx.opts.stop === ctx.opts.start) throw new UsageError("pod scale takes --stop or --start.");
	if (ctx.opts.stop) await rp.stopPod(pod.id);
	else await rp.startPod(pod.id);
	ctx.log(`✓ Pod "${pod.name}" ${ctx.opts.stop ? "stopped (the volume is still billed)" : "started"}`);
}

async function podDestroy(ctx) {
	const rp = runpodClient(ctx);
	const admin = reelgateAdmin(ctx.env, ctx.fetch);
	if (admin && (await admin.deleteBackend(ctx.opts.name)))
		ctx.log(`✓ Backend "${ctx.opts.name}" removed from Reelgate`);
	const pod = await rp.findPod(ctx.opts.name);
	if (pod) {
		await rp.deletePod(pod.id);
		ctx.log(`✓ Pod "${ctx.opts.name}" deleted (${pod.id})`);
	} else ctx.log(`- No pod "${ctx.opts.name}"`);
}

// ── vast.ai ──────────────────────────────────────────────────────────────────────────────────────────────────

function vastClient(ctx) {
	const apiKey = need(ctx.env, "VAST_API_KEY", "create one at https://cloud.vast.ai/manage-keys/.");
	return vastaiRest({ apiKey, base: ctx.env.VASTAI_URL || VASTAI_BASE, fetch: ctx.fetch });
}

/**
 * What the vast.ai template runs: the image's own entrypoint (`runtype: args`, so nothing replaces it) in pod
 * mode on port 8000; the onstart only records the environment for shells opened later.
 */
export function vastTemplateBody(ctx, img, token) {
	const env = workerEnv(ctx, "pod", { POD_PORT: "8000", POD_API_TOKEN: token, MODELS_ROOT: "/workspace/models" });
	return {
		name: `${ctx.opts.name}-worker`,
		image: img,
		env: dockerFlags(env, [8000]),
		onstart: "env | grep -E '^(DEPLOYMENT_MODE|ENABLED_MODELS|MODELS_ROOT|POD_)' >> /etc/environment",
		runtype: "args",
		recommended_disk_space: int(ctx.opts["volume-size"], "volume-size", { min: 10, max: 4000 }),
		private: true,
	};
}

async function vastDeploy(ctx) {
	const vast = vastClient(ctx);
	const img = image(ctx.opts, ctx.env);
	const token = randomBytes(24).toString("base64url");
	const tpl = await vast.createTemplate(vastTemplateBody(ctx, img, token));
	ctx.log(`✓ vast.ai template "${ctx.opts.name}-worker" ready (hash ${tpl.hash_id ?? "?"})`);
	if (!ctx.opts.offer) {
		ctx.log(
			"Pick an offer (vast.ai console or `vastai search offers 'gpu_ram>=80'`), then: npm run gpu -- vastai deploy --offer <id>",
		);
		return { template: tpl };
	}
	const instanceId = await vast.createInstance(ctx.opts.offer, {
		template_hash_id: tpl.hash_id,
		label: ctx.opts.name,
		disk: int(ctx.opts["volume-size"], "volume-size", { min: 10, max: 4000 }),
		runtype: "args",
		target_state: "running",
		cancel_unavail: true,
	});
	ctx.log(`✓ vast.ai instance ${instanceId} created from offer ${ctx.opts.offer}`);
	const inst = await vast.getInstance(instanceId);
	const url = instanceUrl(inst);
	if (url) await register(ctx, ctx.opts.name, { kind: "pod", config: { url, token } });
	else
		ctx.log(
			`! The instance has no public port yet; once \`npm run gpu -- vastai status --instance ${instanceId}\` shows a URL, register it with \`PUT /v1/admin/backends/${ctx.opts.name}\` (kind pod, its url and the POD_API_TOKEN from the template).`,
		);
	return { template: tpl, instanceId, url };
}

async function vastStatus(ctx) {
	if (!ctx.opts.instance) throw new UsageError("vastai status needs --instance ID.");
	const inst = await vastClient(ctx).getInstance(ctx.opts.instance);
	if (!inst) throw new UsageError(`vast.ai instance ${ctx.opts.instance} does not exist.`);
	ctx.log(
		`Instance ${inst.id} (${inst.label ?? ""}): ${inst.actual_status ?? "provisioning"}; ${inst.gpu_name ?? "?"} $${inst.dph_total ?? "?"}/h`,
	);
	ctx.log(`  url: ${instanceUrl(inst) ?? "(no public port yet)"}`);
	return inst;
}

async function vastDestroy(ctx) {
	if (!ctx.opts.instance) throw new UsageError("vastai destroy needs --instance ID.");
	const admin = reelgateAdmin(ctx.env, ctx.fetch);
	if (admin && (await admin.deleteBackend(ctx.opts.name)))
		ctx.log(`✓ Backend "${ctx.opts.name}" removed from Reelgate`);
	await vastClient(ctx).destroyInstance(ctx.opts.instance);
	ctx.log(`✓ vast.ai instance ${ctx.opts.instance} destroyed`);
}

const COMMANDS = {
	runpod: {
		deploy: runpodDeploy,
		status: runpodStatus,
		scale: runpodScale,
		destroy: runpodDestroy,
		register: async (ctx) => registerRunpod(ctx, (await runpodEndpoint(ctx, runpodClient(ctx))).id),
	},
	pod: { deploy: podDeploy, status: podStatus, scale: podScale, destroy: podDestroy },
	vastai: { deploy: vastDeploy, status: vastStatus, destroy: vastDestroy },
};

/**
 * Runs one command. `env`, `fetch` and `log` are injectable so tests can drive it in-process.
 * @param {string[]} argv
 * @param {{ env?: NodeJS.ProcessEnv, fetch?: typeof fetch, log?: (line: string) => void }} [io]
 */
export async function main(argv, io = {}) {
	const { values: opts, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
	if (opts.help || positionals.length === 0) return { help: USAGE };
	const [target, command] = positionals;
	const fn = COMMANDS[target]?.[command];
	if (!fn) throw new UsageError(`Unknown command "${positionals.join(" ")}".\n\n${USAGE}`);
	const ctx = {
		target,
		opts,
		env: io.env ?? process.env,
		fetch: io.fetch ?? fetch,
		log: io.log ?? ((l) => console.log(l)),
	};
	return fn(ctx);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
	main(process.argv.slice(2)).then(
		(r) => {
			if (r?.help) console.log(r.help);
		},
		(err) => {
			if (err instanceof UsageError || err?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
				console.error(`Error: ${err.message}`);
				process.exit(2);
			}
			console.error(`Error: ${err instanceof HttpError ? err.message : (err?.stack ?? err)}`);
			process.exit(1);
		},
	);
}

export { mask };
