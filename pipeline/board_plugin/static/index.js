// The tbpipe tab: a sweep's runs grouped by setting. Hand-written DOM and SVG, no library,
// nothing fetched from outside TensorBoard. TensorBoard loads this module in an iframe
// (/data/plugin_entry.html?name=tbpipe) and calls render().

// plugin_entry.html sets <base href="plugin/tbpipe/">: relative URLs reach this plugin's routes
const DATA = ".";
// Tableau 10: colours told apart in print and by most colour-blind readers
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const BANDS = {ci: "95% interval of the mean", std: "mean ± 1 std", minmax: "min – max"};
const state = {band: "ci", log: false, smoothing: 0, sort: null, descending: false};

function colour(i) {
  return i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 137.5) % 360}, 55%, 45%)`;
}

function el(tag, attrs = {}, ...children) {
  const svg = ["svg", "path", "line", "text", "g", "rect", "polyline"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
                   : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function number(value) {
  if (value === null || value === undefined) return "–";
  if (Number.isInteger(value) && Math.abs(value) < 1e5) return String(value);  // counts, steps
  const size = Math.abs(value);
  if (size !== 0 && (size >= 1e5 || size < 1e-3)) return value.toExponential(3);
  return value.toPrecision(4);
}

async function json(path) {
  const response = await fetch(`${DATA}/${path}`);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const STYLE = `
body { font: 13px Roboto, Arial, sans-serif; margin: 12px 16px; color: #212121; }
h2 { font-size: 15px; margin: 18px 0 6px; }
nav button { margin-right: 6px; padding: 5px 12px; border: 1px solid #bbb; background: #fafafa;
  border-radius: 3px; cursor: pointer; }
nav button.on { background: #f57c00; color: white; border-color: #f57c00; }
table { border-collapse: collapse; margin: 4px 0 10px; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { cursor: pointer; background: #f5f5f5; user-select: none; }
td.left, th.left { text-align: left; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: -1px; margin-right: 6px; }
.legend { position: sticky; top: 0; background: white; padding: 6px 0; z-index: 2;
  border-bottom: 1px solid #e0e0e0; }
.legend span.entry { margin-right: 16px; white-space: nowrap; }
.controls label { margin-right: 14px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { border: 1px solid #e0e0e0; border-radius: 3px; padding: 4px; }
.chart .title { font-weight: bold; margin: 2px 4px; }
.failures li { margin: 2px 0; }
.status-diverged { color: #c62828; } .status-failed { color: #6a1b9a; }
.images-row { display: flex; gap: 8px; align-items: flex-start; margin-bottom: 8px; }
.images-row .name { width: 190px; font-weight: bold; }
.images-row figure { margin: 0; font-size: 11px; text-align: center; }
.images-row img { width: 240px; border: 1px solid #e0e0e0; }
.note { color: #616161; }
`;

export async function render() {
  document.head.append(el("style", {}, STYLE));
  const sections = {settings: showSettings, diff: showDiff, images: showImages,
                    distributions: showDistributions};
  const names = {settings: "Settings", diff: "Config diff", images: "Images",
                 distributions: "Distribution guide"};
  const main = el("main");
  const nav = el("nav");
  const open = async (name) => {
    for (const button of nav.children) button.classList.toggle("on", button.dataset.name === name);
    main.replaceChildren(el("p", {class: "note"}, "reading the runs…"));
    try {
      await sections[name](main);
    } catch (error) {
      main.replaceChildren(el("p", {class: "status-failed"}, `could not load: ${error.message}`));
    }
  };
  for (const [name, title] of Object.entries(names)) {
    nav.append(el("button", {"data-name": name, onclick: () => open(name)}, title));
  }
  document.body.append(nav, main);
  // the page's address can say what to open: #section=diff&a=RUN&b=RUN, #log=1&band=std
  const hash = new URLSearchParams(location.hash.slice(1));
  state.log = hash.get("log") === "1";
  state.band = hash.get("band") in BANDS ? hash.get("band") : state.band;
  state.smoothing = Math.min(0.99, Math.max(0, Number(hash.get("smoothing")) || 0));
  const first = hash.get("section");
  if (first === "diff" && hash.get("a") && hash.get("b")) {
    sections.diff = (main) => showDiff(main, hash.get("a"), hash.get("b"));
  }
  await open(first in sections ? first : "settings");
}

// ---- settings: table, failures, legend, charts ------------------------------------

async function showSettings(main) {
  const view = await json("sweep");
  view.settings.forEach((s, i) => { s.colour = colour(i); s.order = i; s.curves = {}; });
  view.charts = [];
  const table = el("div");
  const charts = el("div", {}, el("p", {class: "note"}, "reading every run's curves…"));
  const drawTable = () => table.replaceChildren(settingsTable(view, drawTable));
  const drawCharts = () => charts.replaceChildren(...chartGrid(view));
  drawTable();
  main.replaceChildren(
    el("h2", {}, `${view.settings.length} settings, `,
       `${view.settings.reduce((sum, s) => sum + s.jobs, 0)} runs`,
       view.keys.length ? ` (swept: ${view.keys.join(", ")}; seeds pooled)` : ""),
    table,
    failureList(view),
    el("h2", {}, "Curves: mean over seeds, one colour per setting"),
    legend(view),
    controls(drawCharts),
    charts,
  );
  // the table first; the curves read every run's event files, so they come second
  const curves = await json("curves");
  view.charts = curves.charts;
  for (const s of view.settings) s.curves = curves.curves[s.label] || {};
  drawCharts();
}

function settingsTable(view, redraw) {
  const stats = view.metrics.filter((m) => view.settings.some((s) => s.stats[m]?.mean !== null));
  const columns = [
    {title: "setting", left: true, value: (s) => s.order,
     cell: (s) => [el("span", {class: "swatch", style: `background:${s.colour}`}), s.label]},
    {title: "n", value: (s) => s.n},
    {title: "completed", value: (s) => s.completed},
    {title: "failed", value: (s) => s.failed},
    {title: "diverged", value: (s) => s.diverged},
    ...stats.map((metric) => ({
      title: `${metric} mean [95% interval]${metric === view.main_metric ? " (main)" : ""}`,
      value: (s) => s.stats[metric].mean,
      cell: (s) => {
        const st = s.stats[metric];
        const interval = st.ci95_low === null ? "" : ` [${number(st.ci95_low)}, ${number(st.ci95_high)}]`;
        return [el("span", {class: "mean", "data-metric": metric}, number(st.mean)), interval];
      },
    })),
  ];
  const rows = [...view.settings];
  if (state.sort !== null) {
    const value = columns[state.sort].value;
    const missing = state.descending ? -Infinity : Infinity;
    rows.sort((a, b) => ((value(a) ?? missing) - (value(b) ?? missing)) * (state.descending ? -1 : 1));
  }
  const header = el("tr", {}, columns.map((column, i) => el("th", {
    class: column.left ? "left" : "",
    title: "click to sort",
    onclick: () => {
      state.descending = state.sort === i ? !state.descending : false;
      state.sort = i;
      redraw();
    },
  }, column.title, state.sort === i ? (state.descending ? " ▼" : " ▲") : "")));
  const body = rows.map((s) => el("tr", {class: "setting-row", "data-label": s.label},
    columns.map((column) => el("td", {class: column.left ? "left" : "", "data-column": column.title},
      column.cell ? column.cell(s) : number(column.value(s))))));
  return el("table", {class: "settings"}, el("thead", {}, header), el("tbody", {}, body));
}

function failureList(view) {
  if (!view.failures.length) return el("p", {class: "note"}, "Every job completed.");
  return el("div", {class: "failures"},
    el("h2", {}, `${view.failures.length} jobs left out of the means and curves`),
    el("ul", {}, view.failures.map((f) => el("li", {class: "failure"},
      el("b", {class: `status-${f.status}`}, f.status), ` ${f.run} (${f.setting}): `,
      el("span", {class: "reason"}, f.reason)))));
}

function legend(view) {
  return el("div", {class: "legend"}, view.settings.map((s) => el("span", {class: "entry"},
    el("span", {class: "swatch", style: `background:${s.colour}`}),
    `${s.label} (n=${s.n})`)));
}

function controls(redraw) {
  const band = el("select", {onchange: (e) => { state.band = e.target.value; redraw(); }},
    Object.entries(BANDS).map(([key, title]) => {
      const option = el("option", {value: key}, title);
      if (key === state.band) option.selected = true;
      return option;
    }));
  const log = el("input", {type: "checkbox", onchange: (e) => { state.log = e.target.checked; redraw(); }});
  log.checked = state.log;
  const shown = el("span", {}, state.smoothing.toFixed(2));
  const smoothing = el("input", {type: "range", min: "0", max: "0.99", step: "0.01",
    value: String(state.smoothing),
    oninput: (e) => { state.smoothing = Number(e.target.value); shown.textContent = state.smoothing.toFixed(2); redraw(); }});
  return el("div", {class: "controls"},
    el("label", {}, "band: ", band), el("label", {}, log, " log scale"),
    el("label", {}, "smoothing ", smoothing, " ", shown));
}

function smooth(values, weight) {
  // TensorBoard's smoothing: an exponential moving average, debiased at the start
  if (!weight) return values;
  let last = 0;
  return values.map((y, i) => { last = last * weight + (1 - weight) * y; return last / (1 - weight ** (i + 1)); });
}

function chartGrid(view) {
  const tags = [...view.charts].sort((a, b) => (b === view.main_tag) - (a === view.main_tag));
  return [el("div", {class: "charts"}, tags.map((tag) => chart(tag, view.settings)))];
}

function chart(tag, settings) {
  const [width, height, left, right, top, bottom] = [440, 250, 62, 12, 10, 30];
  const [low, high] = {ci: ["ci_low", "ci_high"], std: ["std_low", "std_high"], minmax: ["min", "max"]}[state.band];
  const lines = settings.filter((s) => s.curves[tag]).map((s) => {
    const c = s.curves[tag];
    return {s, step: c.step, mean: smooth(c.mean, state.smoothing),
            low: smooth(c[low], state.smoothing), high: smooth(c[high], state.smoothing)};
  });
  const ok = (y) => Number.isFinite(y) && (!state.log || y > 0);
  const ys = lines.flatMap((l) => [...l.mean, ...l.low, ...l.high]).filter(ok);
  const xs = lines.flatMap((l) => l.step);
  const box = el("div", {class: "chart", "data-tag": tag}, el("div", {class: "title"}, tag));
  if (!ys.length) {
    box.append(el("p", {class: "note"}, state.log ? "no positive values to draw on a log scale" : "no values"));
    return box;
  }
  const ty = state.log ? Math.log10 : (y) => y;
  let [y0, y1] = [Math.min(...ys.map(ty)), Math.max(...ys.map(ty))];
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
  const px = (x) => left + ((x - x0) / ((x1 - x0) || 1)) * (width - left - right);
  const py = (y) => top + (1 - (ty(y) - y0) / (y1 - y0)) * (height - top - bottom);
  const svg = el("svg", {width, height, viewBox: `0 0 ${width} ${height}`});
  for (const t of ticks(y0, y1, 5)) {
    const value = state.log ? 10 ** t : t;
    svg.append(el("line", {x1: left, x2: width - right, y1: py(value), y2: py(value), stroke: "#eee"}),
               el("text", {x: left - 4, y: py(value) + 4, "text-anchor": "end", "font-size": 10}, tickLabel(value)));
  }
  for (const t of ticks(x0, x1, 5)) {
    svg.append(el("text", {x: px(t), y: height - 12, "text-anchor": "middle", "font-size": 10}, String(Math.round(t))));
  }
  svg.append(el("text", {x: width - right, y: height - 1, "text-anchor": "end", "font-size": 10, fill: "#757575"}, "step"),
             el("line", {x1: left, x2: left, y1: top, y2: height - bottom, stroke: "#9e9e9e"}),
             el("line", {x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, stroke: "#9e9e9e"}));
  for (const line of lines) {
    const idx = line.step.map((_, i) => i).filter((i) => ok(line.low[i]) && ok(line.high[i]));
    if (idx.length) {
      const upper = idx.map((i) => `${px(line.step[i])},${py(line.high[i])}`);
      const lower = idx.reverse().map((i) => `${px(line.step[i])},${py(line.low[i])}`);
      svg.append(el("path", {d: `M${upper.join("L")}L${lower.join("L")}Z`, fill: line.s.colour, "fill-opacity": 0.18, stroke: "none"}));
    }
  }
  for (const line of lines) {
    const points = line.step.map((x, i) => [x, line.mean[i]]).filter(([, y]) => ok(y));
    svg.append(el("polyline", {points: points.map(([x, y]) => `${px(x)},${py(y)}`).join(" "),
      fill: "none", stroke: line.s.colour, "stroke-width": 2, "data-setting": line.s.label},
      el("title", {}, line.s.label)));
  }
  box.append(svg);
  return box;
}

function tickLabel(value) {
  // 0.5, not 0.5000: a tick is a round number, written without trailing zeros
  return Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(1) : String(Number(value.toPrecision(state.log ? 2 : 6)));
}

function ticks(low, high, count) {
  const step = 10 ** Math.floor(Math.log10((high - low) / count || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (high - low) / s <= count) || step * 10;
  const out = [];
  for (let t = Math.ceil(low / nice) * nice; t <= high + nice * 1e-9; t += nice) out.push(t);
  return out;
}

// ---- config diff ---------------------------------------------------------------

async function showDiff(main, a, b) {
  const query = a && b ? `?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}` : "";
  const diff = await json(`config_diff${query}`);
  const pick = (chosen) => el("select", {}, diff.runs.map((run) => {
    const option = el("option", {value: run}, run);
    if (run === chosen) option.selected = true;
    return option;
  }));
  const first = pick(diff.a || diff.runs[0]);
  const second = pick(diff.b || diff.runs[diff.runs.length - 1]);
  const compare = el("button", {onclick: () => showDiff(main, first.value, second.value)}, "compare");
  main.replaceChildren(
    el("h2", {}, `Keys that differ across the ${diff.runs.length} runs`),
    diff.across.length ? el("table", {class: "across"},
      el("tr", {}, el("th", {class: "left"}, "key"), el("th", {class: "left"}, "values")),
      diff.across.map((row) => el("tr", {}, el("td", {class: "left"}, row.key),
        el("td", {class: "left"}, row.values.join(", ")))))
      : el("p", {class: "note"}, "Every run has the same config."),
    el("h2", {}, "Between two runs"),
    el("p", {}, first, " and ", second, " ", compare),
    diff.between === null ? el("p", {class: "note"}, "Choose two runs and compare.")
      : el("table", {class: "between"},
          el("tr", {}, el("th", {class: "left"}, "key"), el("th", {class: "left"}, diff.a), el("th", {class: "left"}, diff.b)),
          diff.between.map((row) => el("tr", {}, el("td", {class: "left"}, row.key),
            el("td", {class: "left"}, row.a), el("td", {class: "left"}, row.b)))),
  );
}

// ---- images side by side by setting ------------------------------------------------

async function showImages(main, tag) {
  const view = await json(`images${tag ? `?tag=${encodeURIComponent(tag)}` : ""}`);
  if (!view.tags.length) {
    main.replaceChildren(el("p", {class: "note"}, "These runs wrote no images (sinks=[..., images])."));
    return;
  }
  const select = el("select", {onchange: (e) => showImages(main, e.target.value)},
    view.tags.map((t) => { const o = el("option", {value: t}, t); if (t === view.tag) o.selected = true; return o; }));
  main.replaceChildren(
    el("p", {}, "image tag: ", select, el("span", {class: "note"}, "  (each run's last step)")),
    ...view.settings.map((s, i) => el("div", {class: "images-row"},
      el("div", {class: "name"}, el("span", {class: "swatch", style: `background:${colour(i)}`}), s.label),
      s.images.length ? null : el("p", {class: "note"}, "no image: no run of this setting wrote one"),
      s.images.map((image) => el("figure", {},
        el("img", {loading: "lazy", alt: `${image.run} ${image.tag}`,
                   src: `${DATA}/image?run=${encodeURIComponent(image.run)}&tag=${encodeURIComponent(image.tag)}`}),
        el("figcaption", {}, `${image.run.split("/")[0]} · step ${image.step}`,
           image.status && image.status !== "completed" ? ` · ${image.status}` : ""))))));
}

// ---- distribution-reading guide ----------------------------------------------------

async function showDistributions(main, run, tag, step) {
  const params = new URLSearchParams();
  if (run) params.set("run", run);
  if (tag) params.set("tag", tag);
  if (step !== undefined) params.set("step", step);
  let view = await json(`histograms?${params}`);
  if (!view.run && view.runs.length) {
    const first = view.runs[0];
    view = await json(`histograms?run=${encodeURIComponent(first)}`);
  }
  const options = (values, chosen) => values.map((v) => {
    const o = el("option", {value: v}, v); if (String(v) === String(chosen)) o.selected = true; return o;
  });
  const runSelect = el("select", {onchange: (e) => showDistributions(main, e.target.value)}, options(view.runs, view.run));
  const tagSelect = el("select", {onchange: (e) => showDistributions(main, view.run, e.target.value)},
    options(Object.keys(view.tags), view.tag));
  const stepSelect = el("select", {onchange: (e) => showDistributions(main, view.run, view.tag, e.target.value)},
    options(view.tag ? view.tags[view.tag] : [], view.step));
  const pickers = el("p", {}, "run ", runSelect, "  tag ", tagSelect, "  step ", stepSelect);
  if (!view.reading) {
    main.replaceChildren(pickers, el("p", {class: "note"}, "This run wrote no histograms (sinks=[..., histograms])."));
    return;
  }
  const r = view.reading;
  const percent = (share) => (share === null ? "–" : `${(100 * share).toFixed(1)}%`);
  const z = {"0": "−∞", "6.68": "−1.5σ", "15.87": "−1σ", "30.85": "−0.5σ", "50": "0 (median)",
             "69.15": "+0.5σ", "84.13": "+1σ", "93.32": "+1.5σ", "100": "+∞"};
  main.replaceChildren(
    pickers,
    el("p", {}, `${r.count} values, mean ${number(r.mean)}, std ${number(r.std)}. `,
      "DISTRIBUTIONS shades between these percentiles (the darkest band is the middle); ",
      "beside each, where a normal with the same mean and std puts it:"),
    el("table", {class: "edges"},
      el("tr", {}, el("th", {}, "percentile"), el("th", {}, "normal's z"), el("th", {}, "edge drawn"), el("th", {}, "normal's edge")),
      r.edges.map((e) => el("tr", {}, el("td", {}, `${e.percentile}%`), el("td", {}, z[String(e.percentile)] ?? ""),
        el("td", {}, number(e.value)), el("td", {}, number(e.normal))))),
    el("table", {class: "shares"},
      el("tr", {}, el("th", {class: "left"}, "share of values"), el("th", {}, "this histogram"), el("th", {}, "a normal")),
      el("tr", {}, el("td", {class: "left"}, "within mean ± 0.5 std"), el("td", {}, percent(r.within_std["0.5"])), el("td", {}, percent(r.normal_within["0.5"]))),
      el("tr", {}, el("td", {class: "left"}, "within mean ± 1.5 std"), el("td", {}, percent(r.within_std["1.5"])), el("td", {}, percent(r.normal_within["1.5"]))),
      el("tr", {}, el("td", {class: "left"}, "within (−0.5, 0.5)"), el("td", {}, percent(r.within_units["0.5"])), el("td", {}, "")),
      el("tr", {}, el("td", {class: "left"}, "within (−1.5, 1.5)"), el("td", {}, percent(r.within_units["1.5"])), el("td", {}, ""))),
  );
}
