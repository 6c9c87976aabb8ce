// The demo page: save a key, upload an image (and audio), start a job, watch it live, play the result.
import { createApi } from "./api.js";

const KEY_STORAGE = "reelgate.apiKey";
/** Larger videos are not pulled into memory as a blob; the download link still works via a share URL. */
const MAX_BLOB_PREVIEW_BYTES = 256 * 1024 * 1024;

const $ = (id) => document.getElementById(id);
const el = {
	keyForm: $("key-form"),
	key: $("api-key"),
	keyState: $("key-state"),
	forget: $("forget-key"),
	jobForm: $("job-form"),
	image: $("image"),
	audio: $("audio"),
	imageProgress: $("image-progress"),
	audioProgress: $("audio-progress"),
	prompt: $("prompt"),
	model: $("model"),
	resolution: $("resolution"),
	duration: $("duration"),
	submit: $("submit"),
	jobSection: $("job-section"),
	jobHeading: $("job-heading"),
	jobStatus: $("job-status"),
	jobProgress: $("job-progress"),
	jobId: $("job-id"),
	jobModel: $("job-model"),
	result: $("result"),
	video: $("video"),
	download: $("download"),
	cancel: $("cancel"),
	error: $("error"),
	recent: $("recent"),
	recentEmpty: $("recent-empty"),
	refresh: $("refresh"),
};

let apiKey = localStorage.getItem(KEY_STORAGE) ?? "";
const api = createApi(() => apiKey);
let watching; // AbortController of the job being watched
let videoUrl; // the blob URL shown, revoked when replaced

function showError(err) {
	const problem = err?.problem ?? { detail: err?.message ?? String(err) };
	el.error.replaceChildren();
	const p = document.createElement("p");
	p.textContent = problem.detail || problem.title || "Something went wrong.";
	el.error.append(p);
	if (Array.isArray(problem.errors) && problem.errors.length) {
		const ul = document.createElement("ul");
		for (const e of problem.errors) {
			const li = document.createElement("li");
			li.textContent = `${e.path}: ${e.message}`;
			ul.append(li);
		}
		el.error.append(ul);
	}
	el.error.hidden = false;
	el.error.focus();
}

function clearError() {
	el.error.hidden = true;
	el.error.replaceChildren();
}

function renderKeyState() {
	el.key.value = apiKey;
	el.keyState.textContent = apiKey ? "A key is saved in this browser." : "No key saved.";
	el.forget.disabled = !apiKey;
}

el.keyForm.addEventListener("submit", (e) => {
	e.preventDefault();
	apiKey = el.key.value.trim();
	if (!apiKey) return showError(new Error("Paste an API key first."));
	localStorage.setItem(KEY_STORAGE, apiKey);
	clearError();
	renderKeyState();
	void refreshRecent();
});

el.forget.addEventListener("click", () => {
	localStorage.removeItem(KEY_STORAGE);
	apiKey = "";
	renderKeyState();
	el.recent.replaceChildren();
	el.recentEmpty.hidden = false;
	el.key.focus();
});

function describe(job) {
	const pct = Math.round(job.progress?.percent ?? 0);
	const stage = job.progress?.stage ? `, ${job.progress.stage}` : "";
	if (job.status === "failed") return `Failed: ${job.error?.message ?? "no reason given"}`;
	if (job.status === "succeeded") return "Succeeded: the video is ready.";
	if (job.status === "canceled") return "Canceled.";
	return `${job.status[0].toUpperCase()}${job.status.slice(1)}: ${pct}%${stage}`;
}

function renderJob(job) {
	el.jobSection.hidden = false;
	el.jobId.textContent = job.id;
	el.jobModel.textContent = job.model;
	el.jobStatus.textContent = describe(job);
	el.jobStatus.dataset.status = job.status;
	el.jobProgress.value = job.progress?.percent ?? 0;
	el.cancel.hidden = job.status !== "queued" && job.status !== "running";
}

async function showVideo(job) {
	if (videoUrl) URL.revokeObjectURL(videoUrl);
	videoUrl = undefined;
	let src = job.share_url;
	if (!src) {
		const size = job.output?.video?.size ?? 0;
		if (size > MAX_BLOB_PREVIEW_BYTES) {
			el.jobStatus.textContent = "Succeeded: the video is too large to preview here; download it with the API.";
			return;
		}
		videoUrl = await api.videoBlobUrl(job.id);
		src = videoUrl;
	}
	el.video.src = src;
	el.download.href = src;
	el.download.download = `${job.id}.mp4`;
	el.result.hidden = false;
}

/** Watches a job to its end (replacing any job watched before) and shows the video when it succeeds. */
async function watch(job) {
	watching?.abort();
	const controller = new AbortController();
	watching = controller;
	el.result.hidden = true;
	el.video.removeAttribute("src");
	renderJob(job);
	try {
		const final = await api.watchJob(
			job.id,
			(update) => controller.signal.aborted || renderJob(update),
			controller.signal,
		);
		if (controller.signal.aborted || !final) return;
		renderJob(final);
		if (final.status === "succeeded") await showVideo(final);
		void refreshRecent();
	} catch (err) {
		if (!controller.signal.aborted) showError(err);
	}
}

function setUploadProgress(bar, sent, total) {
	bar.hidden = false;
	bar.value = total ? Math.round((sent / total) * 100) : 0;
	bar.setAttribute("aria-valuetext", `${bar.value}% uploaded`);
}

el.jobForm.addEventListener("submit", async (e) => {
	e.preventDefault();
	clearError();
	if (!apiKey) return showError(new Error("Save your API key first."));
	const image = el.image.files?.[0];
	const audio = el.audio.files?.[0];
	if (!image) {
		showError(new Error("Choose an image."));
		return el.image.focus();
	}
	el.submit.disabled = true;
	el.submit.textContent = "Working…";
	try {
		const imageUpload = await api.uploadFile(image, (s, t) => setUploadProgress(el.imageProgress, s, t));
		const audioUpload = audio
			? await api.uploadFile(audio, (s, t) => setUploadProgress(el.audioProgress, s, t))
			: undefined;
		const input = { image: imageUpload.id, resolution: el.resolution.value };
		if (audioUpload) input.audio = audioUpload.id;
		if (el.prompt.value.trim()) input.prompt = el.prompt.value.trim();
		const duration = Number(el.duration.value);
		if (el.duration.value && Number.isFinite(duration)) input.duration_s = duration;
		const job = await api.createJob({ model: el.model.value, input });
		// watch() renders the job section before its first await, so the heading is visible to take focus.
		void watch(job);
		el.jobHeading.focus();
		void refreshRecent();
	} catch (err) {
		showError(err);
	} finally {
		el.submit.disabled = false;
		el.submit.textContent = "Upload and generate";
	}
});

el.cancel.addEventListener("click", async () => {
	try {
		renderJob(await api.cancelJob(el.jobId.textContent));
	} catch (err) {
		showError(err);
	}
});

async function refreshRecent() {
	if (!apiKey) return;
	try {
		const { data } = await api.listJobs(10);
		el.recent.replaceChildren(
			...data.map((job) => {
				const li = document.createElement("li");
				const name = document.createElement("span");
				name.className = "job-name";
				name.textContent = `${job.id} · ${job.model}`;
				const status = document.createElement("span");
				status.className = "status-badge";
				status.textContent = job.status;
				const open = document.createElement("button");
				open.type = "button";
				open.className = "secondary";
				open.textContent = "Show";
				open.setAttribute("aria-label", `Show job ${job.id}`);
				open.addEventListener("click", () => {
					clearError();
					void watch(job);
					el.jobHeading.focus();
				});
				li.append(name, status, open);
				return li;
			}),
		);
		el.recentEmpty.hidden = data.length > 0;
	} catch (err) {
		showError(err);
	}
}

el.refresh.addEventListener("click", () => void refreshRecent());

renderKeyState();
void refreshRecent();
