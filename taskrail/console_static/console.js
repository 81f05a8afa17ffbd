// taskrail console: the workflow graph, executions and their history, over the console's JSON API.
// Plain JavaScript, no build step and nothing fetched from elsewhere: the page works offline.
"use strict";

const LIST_INTERVAL_MS = 2000;
const MAIL_INTERVAL_MS = 3000;
// With the live channel (the console's server relays the stack's WebSocket, GET /api/live), the list is read when a
// change is pushed, and at least this often.
const LIVE_BACKSTOP_MS = 30000;
const DETAIL_INTERVAL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const OUTCOME_LABELS = {
  succeeded: "succeeded", failed: "failed", caught: "caught", retried: "retried",
  running: "running", not_reached: "not reached",
};
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);
const UNSUCCESSFUL = new Set(["FAILED", "TIMED_OUT", "ABORTED"]);
const END_TYPES = new Set(["Succeed", "Fail"]);

const ui = {
  workflow: null,
  executions: [],
  filter: "",
  selectedArn: null,
  detail: null,
  selectedState: null,
  stateChosenByUser: false,
  detailTimer: null,
  detailRequest: 0,
  listTimer: null,
  listLive: false,
};

// -- small helpers -------------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter(Boolean));
  return node;
}

function applyProps(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", "X-Taskrail-Console": "1" },
  });
  const body = await response.json().catch(() => ({ message: response.statusText }));
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  return body;
}

function clockTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

function duration(fromIso, toIso) {
  if (!fromIso) return "";
  const ms = (toIso ? new Date(toIso) : new Date()) - new Date(fromIso);
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function shortId(id) {
  return id && id.length > 12 ? `${id.slice(0, 8)}…` : id || "—";
}

function pretty(value) {
  if (value === undefined) return "—";
  return JSON.stringify(value, null, 2);
}

function errorMessage(cause) {
  // Lambda causes are JSON documents; the message is what a person wants to read.
  try {
    const parsed = JSON.parse(cause);
    return parsed.errorMessage || cause;
  } catch {
    return cause || "";
  }
}

let toastTimer = null;
function toast(message, isError = false) {
  const node = document.getElementById("toast");
  node.textContent = message;
  node.classList.toggle("error", isError);
  node.classList.add("visible");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.remove("visible"), 6000);
}

function setLive(ok) {
  const node = document.getElementById("live");
  node.classList.toggle("offline", !ok);
  node.textContent = ok ? "live" : "offline";
}

// -- executions list -----------------------------------------------------------------------------------

async function refreshList() {
  try {
    const query = ui.filter ? `?status=${encodeURIComponent(ui.filter)}` : "";
    const { executions } = await api(`/api/executions${query}`);
    ui.executions = executions;
    setLive(true);
    renderList();
  } catch (error) {
    setLive(false);
  }
}

function renderList() {
  const list = document.getElementById("executions");
  document.getElementById("execution-count").textContent = `(${ui.executions.length})`;
  if (!ui.executions.length) {
    list.replaceChildren(el("div", { className: "empty", text: "No executions yet. Submit a task: taskrail submit …" }));
    return;
  }
  list.replaceChildren(...ui.executions.map(executionRow));
}

function executionRow(execution) {
  const selected = execution.executionArn === ui.selectedArn;
  const replayOf = /-r(\d+)$/.exec(execution.name || "");
  return el(
    "div",
    {
      className: `execution-row${selected ? " selected" : ""}`,
      role: "option",
      tabindex: "0",
      "aria-selected": String(selected),
      title: execution.executionArn,
      dataset: {
        testid: "execution-row",
        arn: execution.executionArn,
        name: execution.name,
        status: execution.status,
        shownStatus: execution.shownStatus,
        taskId: execution.taskId || "",
      },
      onclick: () => selectExecution(execution.executionArn),
      onkeydown: (event) => event.key === "Enter" && selectExecution(execution.executionArn),
    },
    // The task's end when this execution holds it (a rejected task's execution succeeded quietly), else the
    // execution's status: the six task statuses read as what they are.
    el("span", {
      className: `badge ${execution.shownStatus}`,
      text: execution.shownStatus,
      title: execution.shownStatus === execution.status ? "" : `execution ${execution.status}`,
      dataset: { testid: "row-status" },
    }),
    el(
      "div",
      { className: "row-main" },
      el("div", { className: "row-title", text: execution.taskType || "task" }),
      el("div", {
        className: "row-sub mono",
        text: `${shortId(execution.taskId)}${replayOf ? ` · replay ${replayOf[1]}` : ""}`,
      }),
    ),
    el(
      "div",
      { className: "row-time" },
      el("div", { text: clockTime(execution.startDate) }),
      el("div", { text: duration(execution.startDate, execution.stopDate) }),
    ),
  );
}

// -- the selected execution ----------------------------------------------------------------------------

function selectExecution(arn) {
  if (ui.selectedArn !== arn) {
    ui.selectedArn = arn;
    ui.detail = null;
    ui.selectedState = null;
    ui.stateChosenByUser = false;
    history.replaceState(null, "", arn ? `#${encodeURIComponent(arn)}` : "#");
  }
  renderList();
  refreshDetail();
}

async function refreshDetail() {
  clearTimeout(ui.detailTimer);
  const arn = ui.selectedArn;
  if (!arn) {
    renderExecution();
    return;
  }
  const request = ++ui.detailRequest;
  try {
    const detail = await api(`/api/executions/${encodeURIComponent(arn)}`);
    if (request !== ui.detailRequest || arn !== ui.selectedArn) return;
    ui.detail = detail;
    // Until the user picks a state, the panel follows the execution: where it is, or where it went wrong.
    if (!ui.stateChosenByUser || !(ui.selectedState in detail.states)) ui.selectedState = interestingState(detail);
    renderExecution();
    if (detail.execution.status === "RUNNING") ui.detailTimer = setTimeout(refreshDetail, DETAIL_INTERVAL_MS);
  } catch (error) {
    if (request !== ui.detailRequest) return;
    toast(`Could not load the execution: ${error.message}`, true);
  }
}

function interestingState(detail) {
  const ran = Object.entries(detail.states).filter(([, s]) => s.outcome !== "not_reached");
  const trouble = ran.filter(([, s]) => s.outcome === "caught" || s.outcome === "retried" || s.outcome === "running");
  const pick = trouble[0] || ran.sort((a, b) => b[1].entered_event - a[1].entered_event)[0];
  return pick ? pick[0] : null;
}

function renderExecution() {
  renderHeader();
  renderGraph();
  renderStateDetail();
  renderEvents();
}

function renderHeader() {
  const header = document.getElementById("execution-header");
  const detail = ui.detail;
  if (!detail) {
    header.replaceChildren(
      el("div", { className: "title" }, el("h2", { text: "No execution selected" })),
      el("span", { className: "muted", text: "Pick one on the left to see its path, history and data." }),
    );
    return;
  }
  const { execution, task } = detail;
  const taskStatus = task ? task.status : null;
  const canReplay = TERMINAL.has(execution.status) && execution.status !== "SUCCEEDED" && taskStatus === "FAILED";
  const canCancel = execution.status === "RUNNING";
  // As the Step Functions console: Redrive is offered for an execution that failed, timed out or was aborted, and
  // can be pressed while Step Functions says it is redrivable (14 days); for any other execution it is not there.
  const offersRedrive = UNSUCCESSFUL.has(execution.status);
  const canRedrive = execution.redriveStatus === "REDRIVABLE";
  header.replaceChildren(
    el(
      "div",
      { className: "title" },
      el("span", { className: `badge ${execution.status}`, text: execution.status, dataset: { testid: "execution-status" } }),
      el("h2", { text: execution.name, title: execution.executionArn }),
    ),
    el(
      "dl",
      { className: "facts" },
      fact("Task", el("span", { className: "mono", text: execution.taskId || "—", dataset: { testid: "execution-task-id" } })),
      fact("Type", task ? task.type : "—"),
      fact("Task status", taskStatus ? el("span", { className: `badge ${taskStatus}`, text: taskStatus, dataset: { testid: "task-status" } }) : "—"),
      fact("Attempt", task && task.attempt ? String(task.attempt) : "—"),
      fact("Redriven", el("span", { text: execution.redriveCount ? `${execution.redriveCount} time${execution.redriveCount === 1 ? "" : "s"}` : "—", dataset: { testid: "redrive-count" } })),
      fact("Started", clockTime(execution.startDate)),
      fact("Duration", duration(execution.startDate, execution.stopDate)),
    ),
    el(
      "div",
      { className: "actions" },
      el("button", {
        type: "button",
        text: "Replay",
        title: canReplay ? "Replay the task as a new execution, from the dead-letter queue" : "Only a failed task can be replayed",
        dataset: { testid: "replay-button" },
        disabled: canReplay ? undefined : "",
        onclick: () => replay(execution.taskId),
      }),
      offersRedrive
        ? el("button", {
            type: "button",
            text: "Redrive",
            title: canRedrive
              ? "RedriveExecution: resume this execution from the step that failed"
              : execution.redriveStatusReason || "Step Functions cannot redrive this execution",
            dataset: { testid: "redrive-button" },
            disabled: canRedrive ? undefined : "",
            onclick: () => redrive(execution.executionArn),
          })
        : null,
      el("button", {
        type: "button",
        className: "secondary",
        text: "Cancel",
        title: canCancel ? "Stop the execution and cancel the task" : "Only a running execution can be cancelled",
        dataset: { testid: "cancel-button" },
        disabled: canCancel ? undefined : "",
        onclick: () => cancel(execution.executionArn),
      }),
    ),
  );
}

function fact(label, value) {
  return el("div", {}, el("dt", { text: label }), el("dd", {}, value));
}

async function replay(taskId) {
  try {
    const result = await api(`/api/tasks/${encodeURIComponent(taskId)}/replay`, { method: "POST" });
    const outcome = result.outcomes[0];
    toast(`Replay of ${shortId(taskId)}: ${outcome.detail}`);
    await refreshList();
    if (outcome.executionArn && ui.executions.some((e) => e.executionArn === outcome.executionArn)) {
      selectExecution(outcome.executionArn);
    } else {
      refreshDetail();
    }
  } catch (error) {
    toast(`Replay refused: ${error.message}`, true);
  }
}

async function redrive(arn) {
  try {
    const result = await api(`/api/executions/${encodeURIComponent(arn)}/redrive`, { method: "POST" });
    toast(`Execution redriven (redrive ${result.redriveCount}): it resumes from the step that failed`);
  } catch (error) {
    toast(`Redrive refused: ${error.message}`, true);
  }
  await refreshList();
  refreshDetail();
}

async function cancel(arn) {
  try {
    const result = await api(`/api/executions/${encodeURIComponent(arn)}/stop`, { method: "POST" });
    toast(`Execution stopped; the task is ${result.taskStatus || "unknown"}`);
  } catch (error) {
    toast(`Cancel refused: ${error.message}`, true);
  }
  await refreshList();
  refreshDetail();
}

// -- the graph -----------------------------------------------------------------------------------------

function roundedPath(points, radius = 7) {
  let d = `M ${points[0][0]} ${points[0][1]}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [px, py] = points[i - 1];
    const [x, y] = points[i];
    const [nx, ny] = points[i + 1];
    const r = Math.min(radius, Math.hypot(x - px, y - py) / 2, Math.hypot(nx - x, ny - y) / 2);
    const before = [x - Math.sign(x - px) * r, y - Math.sign(y - py) * r];
    const after = [x + Math.sign(nx - x) * r, y + Math.sign(ny - y) * r];
    d += ` L ${before[0]} ${before[1]} Q ${x} ${y} ${after[0]} ${after[1]}`;
  }
  const last = points[points.length - 1];
  return `${d} L ${last[0]} ${last[1]}`;
}

function arrowMarker(id, className) {
  return svg(
    "marker",
    { id, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "8", markerHeight: "8", markerUnits: "userSpaceOnUse", orient: "auto" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: `arrow ${className}` }),
  );
}

function renderGraph() {
  const container = document.getElementById("graph");
  if (!ui.workflow) return;
  const { layout } = ui.workflow;
  const states = ui.detail ? ui.detail.states : null;
  const taken = new Set((ui.detail ? ui.detail.transitions : []).map(([a, b]) => `${a}→${b}`));
  const root = svg("svg", {
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    role: "img",
    "aria-label": "Workflow graph",
    class: ui.detail ? "with-execution" : "",
  });
  root.append(svg("defs", {}, arrowMarker("arrow", ""), arrowMarker("arrow-taken", "taken")));
  const edges = [...layout.edges].sort((a, b) => taken.has(`${a.source}→${a.target}`) - taken.has(`${b.source}→${b.target}`));
  for (const edge of edges) {
    const isTaken = taken.has(`${edge.source}→${edge.target}`);
    root.append(
      svg(
        "path",
        {
          d: roundedPath(edge.points),
          class: `edge ${edge.kind}${isTaken ? " taken" : ""}`,
          "marker-end": `url(#${isTaken ? "arrow-taken" : "arrow"})`,
          dataset: { testid: "edge", source: edge.source, target: edge.target, kind: edge.kind },
        },
        svg("title", {}, document.createTextNode(`${edge.source} → ${edge.target}${edge.label ? ` (${edge.label})` : ""}`)),
      ),
    );
  }
  for (const node of layout.nodes) root.append(graphNode(node, states ? states[node.name] : null));
  container.replaceChildren(root);
}

function graphNode(node, info) {
  const outcome = info ? info.outcome : "";
  const selected = node.name === ui.selectedState;
  const group = svg("g", {
    class: `node${selected ? " selected" : ""}`,
    transform: `translate(${node.x} ${node.y})`,
    tabindex: "0",
    dataset: { testid: "state-node", state: node.name, outcome: outcome || "none", type: node.type },
    onclick: () => selectState(node.name),
  });
  group.append(
    svg("title", {}, document.createTextNode(`${node.name} (${node.type})${node.comment ? `\n${node.comment}` : ""}${outcome ? `\n${OUTCOME_LABELS[outcome]}` : ""}`)),
    // End states (Succeed, Fail) are pills, as the Step Functions console draws them.
    svg("rect", { class: "box", width: node.width, height: node.height, rx: END_TYPES.has(node.type) ? node.height / 2 : 8 }),
    svg("text", { class: "name", x: node.width / 2, y: node.height / 2 }, document.createTextNode(node.name)),
  );
  if (info && info.retries > 0) {
    group.append(
      svg(
        "g",
        { class: "retries", transform: `translate(${node.width - 22} 0)` },
        svg("title", {}, document.createTextNode(`${info.retries} retr${info.retries === 1 ? "y" : "ies"}`)),
        svg("rect", { x: "-16", y: "-8", width: "32", height: "16", rx: "8" }),
        svg("text", {}, document.createTextNode(`↻ ${info.retries}`)),
      ),
    );
  }
  return group;
}

function selectState(name) {
  ui.selectedState = name;
  ui.stateChosenByUser = true;
  renderGraph();
  renderStateDetail();
  renderEvents();
}

// -- one state's data ----------------------------------------------------------------------------------

function renderStateDetail() {
  const panel = document.getElementById("state-detail");
  const name = ui.selectedState;
  if (!name) {
    panel.replaceChildren(
      el("div", { className: "card-head" }, el("h3", { text: "State" })),
      el("div", { className: "hint", text: "Click a state in the graph to see its input and output." }),
    );
    return;
  }
  const definition = ui.workflow.definition.States[name] || {};
  const info = ui.detail ? ui.detail.states[name] : null;
  const head = el(
    "div",
    { className: "card-head" },
    el("h3", { text: name, dataset: { testid: "state-detail-name" } }),
    info ? el("span", { className: `outcome-chip ${info.outcome}`, text: OUTCOME_LABELS[info.outcome], dataset: { testid: "state-detail-outcome" } }) : null,
  );
  const sections = [section("About", el("dl", { className: "kv" }, ...aboutRows(definition, info)))];
  if (!info) {
    sections.push(section("Definition", el("pre", { className: "json", text: pretty(definition) })));
  } else if (info.outcome !== "not_reached") {
    if (info.failures && info.failures.length) sections.push(section("Errors", ...info.failures.map((f) => failureBox(f, info))));
    sections.push(section("Input", el("pre", { className: "json", text: pretty(info.input), dataset: { testid: "state-input" } })));
    sections.push(section("Output", el("pre", { className: "json", text: info.exited_event ? pretty(info.output) : "— (not exited)", dataset: { testid: "state-output" } })));
  } else {
    sections.push(el("div", { className: "hint", text: "This execution never entered this state." }));
  }
  panel.replaceChildren(head, ...sections);
}

function aboutRows(definition, info) {
  const rows = [["Type", definition.Type], ["Comment", definition.Comment]];
  if (info && info.outcome !== "not_reached") {
    rows.push(["Entered", `${clockTime(info.entered_at)} (event ${info.entered_event})`]);
    if (info.exited_at) rows.push(["Exited", `${clockTime(info.exited_at)} · ${duration(info.entered_at, info.exited_at)}`]);
    if (info.attempts) rows.push(["Attempts", `${info.attempts}${info.retries ? ` (${info.retries} retried)` : ""}`]);
  }
  return rows.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]);
}

function failureBox(failure, info) {
  const last = failure === info.failures[info.failures.length - 1];
  const caught = last && info.outcome === "caught";
  return el(
    "div",
    { className: `error-box${caught || !last || info.outcome === "retried" ? " caught" : ""}` },
    el("strong", { text: failure.error || "error" }),
    el("span", { text: ` (event ${failure.event})${caught ? " → caught" : ""}` }),
    el("div", { text: errorMessage(failure.cause) }),
  );
}

function section(title, ...children) {
  return el("section", {}, el("h4", { text: title }), ...children);
}

// -- event history -------------------------------------------------------------------------------------

function renderEvents() {
  const body = document.querySelector("#events tbody");
  const events = ui.detail ? ui.detail.events : [];
  document.getElementById("event-count").textContent = ui.detail ? `(${events.length})` : "";
  if (!events.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "5", className: "empty", text: "Select an execution to see its events." })));
    return;
  }
  const start = events[0].timestamp;
  let current = null;
  body.replaceChildren(
    ...events.map((event) => {
      const details = eventDetails(event);
      if (event.type.endsWith("StateEntered")) current = details.name;
      const row = el(
        "tr",
        {
          className: eventClass(event, current),
          dataset: { testid: "event-row", type: event.type, state: current || "" },
        },
        el("td", { className: "num", text: String(event.id) }),
        el("td", { className: "num", text: `+${duration(start, event.timestamp)}`, title: event.timestamp }),
        el("td", { text: event.type }),
        el("td", { text: current || "" }),
        el("td", { text: eventSummary(event.type, details), title: eventSummary(event.type, details) }),
      );
      if (event.type.endsWith("StateExited")) current = null;
      return row;
    }),
  );
}

function eventDetails(event) {
  const key = Object.keys(event).find((k) => k.endsWith("EventDetails"));
  return key ? event[key] : {};
}

function eventClass(event, state) {
  const classes = [];
  if (/Failed|TimedOut|Aborted/.test(event.type)) classes.push("failure");
  if (event.type.endsWith("StateEntered")) classes.push("state-entered");
  if (state && state === ui.selectedState) classes.push("highlight");
  return classes.join(" ");
}

function eventSummary(type, details) {
  if (details.error) return `${details.error}: ${errorMessage(details.cause)}`;
  if (type.endsWith("Scheduled") && details.resourceType) return `${details.resourceType}:${details.resource}`;
  if (details.output !== undefined) return `output ${details.output}`;
  if (details.input !== undefined) return `input ${details.input}`;
  return "";
}

// -- submit a task -------------------------------------------------------------------------------------

const submitForm = { types: [] };

function showSubmitType() {
  const chosen = submitForm.types.find((t) => t.type === document.getElementById("submit-type").value);
  if (!chosen) return;
  document.getElementById("submit-summary").textContent = chosen.summary;
  document.getElementById("submit-schema").textContent = pretty(chosen.paramsSchema);
  const required = chosen.paramsSchema.required || [];
  const example = Object.fromEntries(required.map((name) => [name, ""]));
  document.getElementById("submit-params").value = JSON.stringify(example);
}

async function loadSubmitForm() {
  const listed = await api("/api/types");
  if (!listed.canSubmit) return;
  submitForm.types = listed.types;
  const select = document.getElementById("submit-type");
  select.replaceChildren(...listed.types.map((t) => el("option", { value: t.type, text: t.type })));
  select.addEventListener("change", showSubmitType);
  const form = document.getElementById("submit-form");
  form.addEventListener("submit", submitTask);
  form.hidden = false;
  showSubmitType();
}

async function submitTask(event) {
  event.preventDefault();
  let params;
  try {
    params = JSON.parse(document.getElementById("submit-params").value || "{}");
  } catch (error) {
    toast(`Params are not JSON: ${error.message}`, true);
    return;
  }
  const type = document.getElementById("submit-type").value;
  try {
    const accepted = await api("/api/tasks", { method: "POST", body: JSON.stringify({ type, params }) });
    toast(`Submitted ${type}: task ${accepted.taskId} (${accepted.status})`);
    await refreshList();
  } catch (error) {
    toast(`Submit refused: ${error.message}`, true);
  }
}

// -- live progress: pushed changes, relayed by the console's server; polling when there is no channel ---------

function setChannel(text) {
  document.getElementById("channel").textContent = text;
}

function pollEvery(ms) {
  if (ui.listTimer) clearInterval(ui.listTimer);
  ui.listTimer = setInterval(refreshList, ms);
}

async function followLive() {
  let after = 0;
  for (;;) {
    let answer;
    try {
      answer = await api(`/api/live?after=${after}`);
    } catch (error) {
      answer = { channel: null, reason: `the live relay failed (${error.message})` };
    }
    if (!answer.channel) {
      setChannel(`polling every ${LIST_INTERVAL_MS / 1000} s: ${answer.reason}`);
      pollEvery(LIST_INTERVAL_MS);
      return;
    }
    if (!ui.listLive) {
      ui.listLive = true;
      setChannel("live: WebSocket");
      pollEvery(LIVE_BACKSTOP_MS);
    }
    after = answer.sequence;
    if (answer.changes.length) {
      await refreshList();
      if (ui.selectedArn) refreshDetail();
    }
  }
}

// -- the local mailbox: SNS email deliveries (confirmations, task outcomes) ------------------------------

async function refreshMail() {
  let answer;
  try {
    answer = await api("/api/mail");
  } catch (error) {
    return;
  }
  document.getElementById("mail-count").textContent = answer.messages.length ? `(${answer.messages.length})` : "";
  const items = answer.messages.slice().reverse().map((mail) => {
    const what = mail.message && mail.message.taskId ? `task ${mail.message.taskId} ${mail.message.outcome}` : mail.subject;
    const item = el("li", { dataset: { testid: "mail-item" } }, el("strong", { text: mail.to }), " ", what);
    if (mail.kind === "SubscriptionConfirmation") {
      item.append(" ", el("button", { text: "Confirm", dataset: { testid: "mail-confirm" }, onclick: () => confirmMail(mail.token) }));
    }
    return item;
  });
  document.getElementById("mail-list").replaceChildren(...items);
}

async function confirmMail(token) {
  try {
    const answer = await api("/api/mail/confirm", { method: "POST", body: JSON.stringify({ token }) });
    toast(`Confirmed ${answer.confirmed}`);
  } catch (error) {
    toast(`Could not confirm: ${error.message}`, true);
  }
  refreshMail();
}

// -- start ---------------------------------------------------------------------------------------------

async function start() {
  document.getElementById("status-filter").addEventListener("change", (event) => {
    ui.filter = event.target.value;
    refreshList();
  });
  try {
    ui.workflow = await api("/api/workflow");
    document.getElementById("workflow-name").textContent = ui.workflow.stateMachineName;
    document.getElementById("stack-meta").textContent = `API ${ui.workflow.apiUrl}`;
  } catch (error) {
    toast(`Could not load the workflow: ${error.message}`, true);
  }
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (fromHash) ui.selectedArn = fromHash;
  renderExecution();
  loadSubmitForm().catch((error) => toast(`Could not load the task types: ${error.message}`, true));
  await refreshList();
  if (ui.selectedArn) refreshDetail();
  pollEvery(LIST_INTERVAL_MS);
  followLive();
  refreshMail();
  setInterval(refreshMail, MAIL_INTERVAL_MS);
}

start();
