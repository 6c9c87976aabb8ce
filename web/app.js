// The demo page: check and save a key, pick a model from the catalog, upload its files, start a job, watch it live,
// play the result from its share link; recent jobs stay live while they run.
import { ApiError, createApi, isTerminal } from "./api.js";
import {
	acceptsJobs,
	clearFieldErrors,
	invalidFields,
	inWords,
	labelOf,
	readForm,
	renderModelForm,
	renderModels,
	showFieldErrors,
} from "./form.js";
import { costOf, createdAt, describeStatus, jobCard, tookOf } from "./jobs.js";

const KEY_STORAGE = "reelgate.apiKey";
/** Running jobs of the recent list followed live at once; the others are refreshed with the list. */
const LIVE_RECENT = 5;

const $ = (id) => document.getElementById(id);
const el = {
	keyForm: $("key-form"),
	key: $("api-key"),
	keyState: $("key-state"),
	forget: $("forget-key"),
	jobForm: $("job-form"),
	model: $("model"),
	modelNote: $("model-note"),
	modelAbout: $("model-about"),
	inputs: $("inputs"),
	params: $("params"),
	advanced: $("advanced-params"),
	advancedBox: $("advanced"),
	submit: $("submit"),
	formError: $("form-error"),
	jobSection: $("job-section"),
	jobHeading: $("job-heading"),
	jobStatus: $("job-status"),
	jobProgress: $("job-progress"),
	jobModel: $("job-model"),
	jobCreated: $("job-created"),
	jobTook: $("job-took"),
	jobCost: $("job-cost"),
	result: $("result"),
	video: $("video"),
	download: $("download"),
	cancel: $("cancel"),
	share: $("share"),
	shareState: $("share-state"),
	error: $("error"),
	recent: $("recent"),
	recentEmpty: $("recent-empty"),
	refresh: $("refresh"),
};

let apiKey = localStorage.getItem(KEY_STORAGE) ?? "";
const api = createApi(() => apiKey);
let models = [];
let formModel; // the model the form's fields were built for: a reload of the catalog keeps what was typed
let current; // the job shown in the job section
let watching; // its AbortController
let recentWatchers = []; // AbortControllers of the recent jobs followed live

/** A problem's text, in words: no upload ids, no JSON paths. */
const words = (err) => inWords(err?.problem?.detail ?? err?.message ?? String(err), el.jobForm);

function showError(err) {
	el.error.textContent = words(err) || "Something went wrong.";
	el.error.hidden = false;
	el.error.focus();
}

function clearErrors() {
	el.error.hidden = true;
	el.error.textContent = "";
	el.formError.hidden = true;
	el.formError.textContent = "";
	clearFieldErrors(el.jobForm);
}

// --- the key -------------------------------------------------------------------------------------------------------

function setKeyState(text, kind) {
	el.keyState.textContent = text;
	el.keyState.dataset.kind = kind;
	if (kind === "error") el.key.setAttribute("aria-invalid", "true");
	else el.key.removeAttribute("aria-invalid");
}

/** Asks the API whose key this is (GET /v1/limits) and says so; false when the key is refused. */
async function checkKey() {
	if (!apiKey) {
		setKeyState("No key saved.", "none");
		return false;
	}
	try {
		const mine = await api.limits();
		const cap = mine.limits.monthly_spend_cap_usd.value;
		setKeyState(
			`Key “${mine.key.name}” of account ${mine.account}: ${mine.limits.max_concurrent_jobs.value} jobs at once, ` +
				`${cap === null ? "no monthly spend cap" : `$${cap} a month`}, $${mine.month_spend_usd.toFixed(4)} spent this month.`,
			"ok",
		);
		return true;
	} catch (err) {
		setKeyState(`This key was refused: ${words(err)}`, "error");
		return false;
	}
}

el.keyForm.addEventListener("submit", async (e) => {
	e.preventDefault();
	clearErrors();
	const entered = el.key.value.trim();
	if (!entered) {
		setKeyState("Paste an API key first (npm run keys -- create --name me makes one).", "error");
		return el.key.focus();
	}
	apiKey = entered;
	setKeyState("Checking the key…", "pending");
	const ok = await checkKey();
	// A refused key is not kept: the next visit would only be refused again.
	if (ok) localStorage.setItem(KEY_STORAGE, apiKey);
	else localStorage.removeItem(KEY_STORAGE);
	el.forget.disabled = !ok;
	if (ok) await Promise.all([loadModels(), refreshRecent()]);
	else el.key.focus();
});

el.forget.addEventListener("click", () => {
	localStorage.removeItem(KEY_STORAGE);
	apiKey = "";
	el.key.value = "";
	el.forget.disabled = true;
	setKeyState("No key saved.", "none");
	stopRecentWatchers();
	el.recent.replaceChildren();
	el.recentEmpty.hidden = false;
	el.key.focus();
});

// --- the models ----------------------------------------------------------------------------------------------------

async function loadModels() {
	try {
		models = await api.listModels();
	} catch (err) {
		el.modelNote.textContent = `The models could not be loaded: ${words(err)}`;
		return;
	}
	const chosen = el.model.value;
	renderModels(el.model, el.modelNote, models);
	const keep = models.find((m) => m.id === chosen && acceptsJobs(m));
	if (keep) el.model.value = keep.id;
	showModel();
}

function showModel() {
	const model = models.find((m) => m.id === el.model.value);
	el.submit.disabled = !model || !acceptsJobs(model);
	if (!model || model.id === formModel) return;
	formModel = model.id;
	el.modelAbout.textContent = model.description;
	renderModelForm(model, { inputs: el.inputs, params: el.params, advanced: el.advanced, advancedBox: el.advancedBox });
}

el.model.addEventListener("change", () => {
	clearErrors();
	showModel();
});

// --- a job ---------------------------------------------------------------------------------------------------------

function renderJob(job) {
	current = job;
	el.jobSection.hidden = false;
	el.jobModel.textContent = job.model;
	el.jobCreated.textContent = createdAt(job);
	el.jobTook.textContent = tookOf(job);
	el.jobCost.textContent = costOf(job);
	el.jobStatus.textContent = describeStatus(job);
	el.jobStatus.dataset.status = job.status;
	el.jobProgress.value = job.progress?.percent ?? 0;
	el.cancel.hidden = isTerminal(job.status);
	el.share.hidden = job.status !== "succeeded";
	el.download.hidden = job.status !== "succeeded";
	updateCard(job);
}

/** The video plays from its share link: signed, so the browser streams it with Range requests, no key needed. */
async function showVideo(job) {
	const url = job.share_url ?? (await api.shareJob(job.id)).url;
	el.video.src = url;
	el.download.href = url;
	el.download.download = `${job.id}.mp4`;
	el.result.hidden = false;
}

/** Watches a job to its end (replacing any job watched before) and shows the video when it succeeds. */
async function watch(job) {
	watching?.abort();
	const controller = new AbortController();
	watching = controller;
	el.result.hidden = true;
	el.shareState.textContent = "";
	el.video.removeAttribute("src");
	renderJob(job);
	try {
		const final = isTerminal(job.status)
			? job
			: await api.watchJob(job.id, (u) => controller.signal.aborted || renderJob(u), controller.signal);
		if (controller.signal.aborted || !final) return;
		renderJob(final);
		if (final.status === "succeeded") await showVideo(final);
	} catch (err) {
		if (!controller.signal.aborted) showError(err);
	}
}

function setUploadProgress(name, sent, total) {
	const bar = $(`input-${name}-progress`);
	bar.hidden = false;
	bar.value = total ? Math.round((sent / total) * 100) : 0;
	bar.setAttribute("aria-valuetext", `${bar.value}% uploaded`);
}

/** A refused file: its bar goes back to nothing, and the reason is said at its picker. */
function uploadRefused(name, err) {
	const bar = $(`input-${name}-progress`);
	bar.value = 0;
	bar.hidden = true;
	bar.removeAttribute("aria-valuetext");
	showFieldErrors(el.jobForm, [{ field: name, message: `was refused: ${words(err)}` }]);
}

el.jobForm.addEventListener("submit", async (e) => {
	e.preventDefault();
	clearErrors();
	if (!apiKey) {
		setKeyState("Save your API key first.", "error");
		return el.key.focus();
	}
	const model = models.find((m) => m.id === el.model.value);
	if (!model || !acceptsJobs(model)) return;
	// What the browser can tell (ranges, required files) is said at each field before anything is uploaded.
	const invalid = invalidFields(el.jobForm);
	if (invalid.length) return void showFieldErrors(el.jobForm, invalid);
	const { files, values } = readForm(el.jobForm);
	el.submit.disabled = true;
	el.submit.textContent = "Working…";
	try {
		const input = { ...values };
		for (const [name, file] of Object.entries(files)) {
			try {
				input[name] = (await api.uploadFile(file, (s, t) => setUploadProgress(name, s, t))).id;
			} catch (err) {
				uploadRefused(name, err);
				return;
			}
		}
		const job = await api.createJob({ model: model.id, input });
		// watch() renders the job section before its first await, so the heading is visible to take focus.
		void watch(job);
		el.jobHeading.focus();
		void refreshRecent();
	} catch (err) {
		const placed = err instanceof ApiError ? showFieldErrors(el.jobForm, err.problem.errors ?? []) : [];
		if (placed.length === 0) showError(err);
		else {
			el.formError.textContent = `Check ${placed.map((c) => labelOf(c.dataset.field, null).toLowerCase()).join(", ")}.`;
			el.formError.hidden = false;
		}
	} finally {
		el.submit.disabled = !acceptsJobs(model);
		el.submit.textContent = "Upload and generate";
	}
});

async function cancel(job) {
	try {
		const canceled = await api.cancelJob(job.id);
		if (current?.id === job.id) renderJob(canceled);
		else updateCard(canceled);
	} catch (err) {
		showError(err);
	}
}

/** Copies the job's share link (a link that plays without a key) and shows it, for when the clipboard is closed. */
async function share(job) {
	try {
		const url = job.share_url ?? (await api.shareJob(job.id)).url;
		let copied = true;
		try {
			await navigator.clipboard.writeText(url);
		} catch {
			copied = false;
		}
		el.jobSection.hidden = false;
		el.shareState.replaceChildren(copied ? "Share link copied (it plays without a key for 24 h): " : "Share link: ");
		const link = document.createElement("a");
		link.href = url;
		link.textContent = "open the video";
		el.shareState.append(link);
	} catch (err) {
		showError(err);
	}
}

el.cancel.addEventListener("click", () => current && void cancel(current));
el.share.addEventListener("click", () => current && void share(current));

// --- recent jobs ---------------------------------------------------------------------------------------------------

const cardActions = {
	show: (job) => {
		clearErrors();
		void watch(job);
		el.jobHeading.focus();
	},
	cancel: (job) => void cancel(job),
	share: (job) => void share(job),
};

function updateCard(job) {
	const card = el.recent.querySelector(`[data-job-id="${job.id}"]`);
	if (card && (card.dataset.status !== job.status || !isTerminal(job.status)))
		card.replaceWith(jobCard(job, cardActions));
}

function stopRecentWatchers() {
	for (const c of recentWatchers) c.abort();
	recentWatchers = [];
}

async function refreshRecent() {
	if (!apiKey) return;
	try {
		const { data } = await api.listJobs(10);
		stopRecentWatchers();
		el.recent.replaceChildren(...data.map((job) => jobCard(job, cardActions)));
		el.recentEmpty.hidden = data.length > 0;
		// Running jobs stay live: their cards follow the event stream until they end.
		for (const job of data.filter((j) => !isTerminal(j.status)).slice(0, LIVE_RECENT)) {
			const controller = new AbortController();
			recentWatchers.push(controller);
			api
				.watchJob(job.id, (u) => controller.signal.aborted || updateCard(u), controller.signal)
				.then((final) => final && !controller.signal.aborted && updateCard(final))
				.catch(() => {});
		}
	} catch (err) {
		showError(err);
	}
}

el.refresh.addEventListener("click", () => void refreshRecent());

el.key.value = apiKey;
el.forget.disabled = !apiKey;
if (apiKey) {
	void checkKey().then((ok) => ok && Promise.all([loadModels(), refreshRecent()]));
} else {
	setKeyState("No key saved.", "none");
	el.submit.disabled = true;
}
