// How a job reads on the page: its status in words, when it was made, how long it took, what it cost; and a card
// for the recent-jobs list, with a poster frame once its video exists.

const time = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function describeStatus(job) {
	const pct = Math.round(job.progress?.percent ?? 0);
	const stage = job.progress?.stage ? `, ${job.progress.stage}` : "";
	if (job.status === "failed") return `Failed: ${job.error?.message ?? "no reason given"}`;
	if (job.status === "succeeded") return "Succeeded: the video is ready.";
	if (job.status === "canceled") return "Canceled.";
	return `${job.status[0].toUpperCase()}${job.status.slice(1)}: ${pct}%${stage}`;
}

export const createdAt = (job) => time.format(new Date(job.created_at));

/** From creation to the end (or to now while it runs). */
export function tookOf(job, now = Date.now()) {
	const end = job.completed_at ? Date.parse(job.completed_at) : now;
	const s = Math.max(0, (end - Date.parse(job.created_at)) / 1000);
	const text = s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
	return job.completed_at ? text : `${text} so far`;
}

export const costOf = (job) => (job.cost ? `$${job.cost.usd.toFixed(4)} (${job.cost.gpu_seconds} GPU s)` : "none yet");

const canCancel = (job) => job.status === "queued" || job.status === "running";

function button(text, label, onClick) {
	const b = document.createElement("button");
	b.type = "button";
	b.className = "secondary";
	b.textContent = text;
	b.setAttribute("aria-label", label);
	b.addEventListener("click", onClick);
	return b;
}

/**
 * A recent job as a list item: a poster frame (the video's first frame, from its share link), model, status,
 * created time, duration, cost, and the buttons that apply (show, cancel, copy the share link).
 */
export function jobCard(job, actions) {
	const li = document.createElement("li");
	li.className = "job-card";
	li.dataset.jobId = job.id;
	li.dataset.status = job.status;
	const poster = document.createElement("div");
	poster.className = "poster";
	if (job.status === "succeeded" && job.share_url) {
		const video = document.createElement("video");
		video.muted = true;
		video.preload = "metadata";
		video.playsInline = true;
		// The first frame stands for the video; the link (signed) plays without a key.
		video.src = `${job.share_url}#t=0.1`;
		video.setAttribute("aria-hidden", "true");
		video.tabIndex = -1;
		poster.append(video);
	} else {
		poster.textContent = job.status === "failed" ? "✕" : job.status === "canceled" ? "–" : "…";
		poster.setAttribute("aria-hidden", "true");
	}
	const meta = document.createElement("div");
	meta.className = "job-meta";
	const title = document.createElement("p");
	title.className = "job-title";
	const model = document.createElement("strong");
	model.textContent = job.model;
	const badge = document.createElement("span");
	badge.className = "status-badge";
	badge.dataset.status = job.status;
	badge.textContent = describeStatus(job);
	title.append(model, " ", badge);
	const facts = document.createElement("p");
	facts.className = "hint";
	facts.textContent = `${createdAt(job)} · took ${tookOf(job)} · cost ${costOf(job)}`;
	meta.append(title, facts);
	const buttons = document.createElement("div");
	buttons.className = "job-actions";
	const name = `the ${job.model} job of ${createdAt(job)}`;
	buttons.append(button("Show", `Show ${name}`, () => actions.show(job)));
	if (canCancel(job)) buttons.append(button("Cancel", `Cancel ${name}`, () => actions.cancel(job)));
	if (job.status === "succeeded")
		buttons.append(button("Copy link", `Copy the share link of ${name}`, () => actions.share(job)));
	li.append(poster, meta, buttons);
	return li;
}
