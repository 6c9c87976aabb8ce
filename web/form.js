// The "New video" form, built from the model catalog (GET /v1/models): a file picker per input, a field per
// parameter with the schema's range and default, advanced ones tucked away; and errors shown at their field, in words.

/** Words for the parameters every model shares; others are named by the catalog's title or their own name. */
const LABELS = {
	prompt: "Prompt",
	negative_prompt: "Negative prompt",
	resolution: "Resolution",
	duration_s: "Duration (seconds)",
	fps: "Frames per second",
	seed: "Seed",
	steps: "Steps",
	image: "Image",
	audio: "Audio",
	mask: "Mask",
	video: "Video",
};

const FORMAT_NAMES = {
	"image/png": "PNG",
	"image/jpeg": "JPEG",
	"image/webp": "WebP",
	"audio/wav": "WAV",
	"audio/mpeg": "MP3",
	"audio/flac": "FLAC",
	"audio/ogg": "OGG",
	"video/mp4": "MP4",
};

/** Sizes offered for a resolution parameter, kept to those on the model's grid. */
const SIZES = ["512x288", "640x352", "832x480", "1280x720", "480x832", "720x1280", "512x512", "640x640", "768x768"];

export const labelOf = (name, schema) => schema?.title ?? LABELS[name] ?? name.replaceAll("_", " ");

function element(tag, attributes = {}, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attributes)) {
		if (v === undefined || v === false) continue;
		if (k === "text") el.textContent = v;
		else el.setAttribute(k, v === true ? "" : String(v));
	}
	el.append(...children);
	return el;
}

function joinWords(words) {
	return words.length <= 1 ? (words[0] ?? "") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

function onGrid(size, grid) {
	const [w, h] = size.split("x").map(Number);
	const side = (s) => s >= grid.min_side && s <= grid.max_side && s % grid.multiple_of === 0;
	return side(w) && side(h) && (!grid.max_pixels || w * h <= grid.max_pixels);
}

/** One field: its label, hint, control and the slot its error goes in (ids derived from `name`). */
function fieldFor(name, schema) {
	const id = `param-${name}`;
	const label = labelOf(name, schema);
	const hintId = `${id}-hint`;
	const errorId = `${id}-error`;
	const described = `${hintId} ${errorId}`;
	let control;
	const grid = schema["x-resolution"];
	if (grid) {
		const sizes = [...new Set([schema.default, ...SIZES])].filter((s) => s && onGrid(s, grid));
		control = element("select", { id, name, "aria-describedby": described });
		for (const size of sizes) {
			control.append(
				element("option", { value: size, selected: size === schema.default, text: size.replace("x", "×") }),
			);
		}
	} else if (schema.enum) {
		control = element("select", { id, name, "aria-describedby": described });
		for (const v of schema.enum)
			control.append(element("option", { value: v, selected: v === schema.default, text: v }));
	} else if (schema.type === "boolean") {
		control = element("input", {
			id,
			name,
			type: "checkbox",
			checked: schema.default === true,
			"aria-describedby": described,
		});
	} else if (schema.type === "number" || schema.type === "integer") {
		// A default measured from a file or drawn at random is the server's to choose: the field starts empty.
		const chosen = schema["x-default-from"] || schema["x-random-default"];
		control = element("input", {
			id,
			name,
			type: "number",
			inputmode: schema.type === "integer" ? "numeric" : "decimal",
			min: schema.minimum,
			max: schema.maximum,
			step: schema.type === "integer" ? 1 : "any",
			value: chosen ? undefined : schema.default,
			placeholder: schema["x-default-from"]
				? `from the ${schema["x-default-from"].input}`
				: schema["x-random-default"]
					? "random"
					: undefined,
			"aria-describedby": described,
		});
	} else if (schema["x-multiline"] || name.endsWith("prompt")) {
		control = element("textarea", { id, name, rows: 3, maxlength: schema.maxLength, "aria-describedby": described });
	} else {
		control = element("input", { id, name, type: "text", maxlength: schema.maxLength, "aria-describedby": described });
	}
	control.dataset.field = name;
	control.dataset.input = "parameter";
	control.dataset.type = schema.type ?? "string";
	const range = schema.minimum !== undefined ? ` From ${schema.minimum} to ${schema.maximum}.` : "";
	return element(
		"div",
		{ class: "field" },
		element("label", { for: id, text: label }),
		control,
		element("p", { id: hintId, class: "hint", text: `${schema.description ?? ""}${range}`.trim() }),
		element("p", { id: errorId, class: "field-error", hidden: true }),
	);
}

/** A file picker for input `name`, with its progress bar and error slot. */
function pickerFor(name, spec) {
	const id = `input-${name}`;
	const formats = joinWords(spec.content_types.map((t) => FORMAT_NAMES[t] ?? t));
	const label = element(
		"label",
		{ for: id },
		`${labelOf(name)} `,
		element("span", { class: "req", text: `(${spec.required ? "required" : "optional"}; ${formats})` }),
	);
	const control = element("input", {
		id,
		name,
		type: "file",
		accept: spec.content_types.join(","),
		required: spec.required,
		"aria-describedby": `${id}-hint ${id}-error`,
	});
	control.dataset.field = name;
	control.dataset.input = "file";
	return element(
		"div",
		{ class: "field" },
		label,
		control,
		element("p", { id: `${id}-hint`, class: "hint", text: spec.description }),
		element("progress", {
			id: `${id}-progress`,
			max: 100,
			value: 0,
			hidden: true,
			"aria-label": `Upload progress: ${labelOf(name).toLowerCase()}`,
		}),
		element("p", { id: `${id}-error`, class: "field-error", hidden: true }),
	);
}

/**
 * Whether the API takes a job for the model now: some enabled backend serves it. One whose backends are all
 * unhealthy still takes jobs, which wait. (A server older than `accepting_jobs` took only `available` ones.)
 */
export const acceptsJobs = (model) => model.accepting_jobs ?? model.available;

/** Fills the model select: available models first, then those whose jobs wait, the others disabled and said why. */
export function renderModels(select, note, models) {
	const rank = (m) => (m.available ? 2 : acceptsJobs(m) ? 1 : 0);
	const ordered = [...models].sort((a, b) => rank(b) - rank(a));
	const suffix = (m) => (m.available ? "" : acceptsJobs(m) ? " (jobs wait)" : " (unavailable)");
	select.replaceChildren(
		...ordered.map((m) =>
			element("option", { value: m.id, disabled: !acceptsJobs(m), text: `${m.title}${suffix(m)}` }),
		),
	);
	const unavailable = models.filter((m) => !m.available);
	note.textContent = unavailable.length
		? `Not available now: ${unavailable.map((m) => `${m.title}: ${m.unavailable_reason ?? "no backend serves it"}`).join("; ")}.`
		: "";
}

/** Builds the inputs and parameters of `model` into their containers. */
export function renderModelForm(model, { inputs, params, advanced, advancedBox }) {
	inputs.replaceChildren(...Object.entries(model.inputs).map(([name, spec]) => pickerFor(name, spec)));
	const properties = Object.entries(model.parameters?.properties ?? {});
	params.replaceChildren(...properties.filter(([, s]) => !s["x-advanced"]).map(([n, s]) => fieldFor(n, s)));
	const more = properties.filter(([, s]) => s["x-advanced"]).map(([n, s]) => fieldFor(n, s));
	advanced.replaceChildren(...more);
	advancedBox.hidden = more.length === 0;
}

/** The job's `input` from the form: the files to upload, and each parameter given (empty fields left out). */
export function readForm(form) {
	const files = {};
	const values = {};
	for (const control of form.querySelectorAll("[data-input]")) {
		const name = control.dataset.field;
		if (control.type === "file") {
			if (control.files?.[0]) files[name] = control.files[0];
		} else if (control.type === "checkbox") values[name] = control.checked;
		else if (control.value.trim() !== "") {
			const raw = control.value.trim();
			values[name] = control.dataset.type === "number" || control.dataset.type === "integer" ? Number(raw) : raw;
		}
	}
	return { files, values };
}

/** The browser's own check of each field (range, step, required), in the API's words; [] when all pass. */
export function invalidFields(form) {
	const problems = [];
	for (const control of form.querySelectorAll("[data-input]")) {
		if (control.checkValidity()) continue;
		const v = control.validity;
		const name = control.dataset.field;
		const message = v.valueMissing
			? "is required"
			: v.rangeUnderflow || v.rangeOverflow
				? `must be from ${control.min} to ${control.max}`
				: v.stepMismatch
					? "must be a whole number"
					: v.badInput
						? "must be a number"
						: "is not valid";
		problems.push({ field: name, message });
	}
	return problems;
}

/** Clears every field's error. */
export function clearFieldErrors(form) {
	for (const slot of form.querySelectorAll(".field-error")) {
		slot.hidden = true;
		slot.textContent = "";
	}
	for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

/** A problem's text for a person: upload ids and JSON paths become the names of the fields they are. */
export function inWords(text, form) {
	return String(text)
		.replace(/\bjson\.input\.(\w+)|\binput\.(\w+)/g, (_, a, b) => labelOfControl(form, a ?? b))
		.replace(/\bjson\.(\w+)/g, (_, a) => labelOfControl(form, a))
		.replace(/\bupl_[a-z0-9]+/g, "the uploaded file")
		.replace(/`/g, "");
}

function labelOfControl(form, name) {
	const control = form?.querySelector(`[data-field="${name}"]`);
	const label = control && form.querySelector(`label[for="${control.id}"]`);
	return label ? label.firstChild.textContent.trim() : labelOf(name);
}

/**
 * Shows each error at its field (`field` is a parameter or input name, or an `errors[].path` of a problem) and
 * returns the fields it could place; focus goes to the first.
 */
export function showFieldErrors(form, errors) {
	const placed = [];
	for (const e of errors) {
		const name = String(e.field ?? e.path ?? "").replace(/^json\.(input\.)?/, "");
		const control = form.querySelector(`[data-field="${name}"]`);
		if (!control) continue;
		const slot = document.getElementById(`${control.id}-error`);
		slot.textContent = `${labelOfControl(form, name)} ${inWords(e.message, form)}.`.replace(/\.\.$/, ".");
		slot.hidden = false;
		control.setAttribute("aria-invalid", "true");
		placed.push(control);
	}
	placed[0]?.focus();
	return placed;
}
