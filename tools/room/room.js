// The room's page: asks for state.json every second and redraws the grid.
// state.json is relative: the public page (/) reads /state.json, the
// instructor's page (/CODE/) reads /CODE/state.json (names always shown).
// Every name and check's name goes into the page with textContent: text, never HTML.
"use strict";

const POLL_MS = 1000;
let shownVersion = null;
let clockOffset = 0; // The room's clock minus this browser's, in ms.

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child); // A string becomes a text node.
  }
  return node;
}

function minutesSince(iso) {
  return Math.max(0, Math.floor((Date.now() + clockOffset - Date.parse(iso)) / 60000));
}

function clockTime(iso) {
  return new Date(Date.parse(iso)).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
}

function cell(participant, step) {
  const verdict = participant.steps[step];
  const attributes = {"data-step": step, "class": "cell none", "data-verdict": "none"};
  if (!verdict) {
    attributes.title = `${participant.name}, step ${step}: not started`;
    return element("td", attributes, "·");
  }
  const [passed, total] = verdict.checks;
  const hints = verdict.hints === 1 ? "1 hint" : `${verdict.hints} hints`;
  const detail = `${participant.name}, step ${step}: ${passed} of ${total} checks passed, ${hints}, ` +
                 `at ${clockTime(verdict.at)}`;
  const current = participant.current === step ? " current" : "";
  if (verdict.passed) {
    Object.assign(attributes, {"class": "cell passed" + current, "data-verdict": "passed", "title": detail});
    return element("td", attributes, "✓");
  }
  Object.assign(attributes, {"class": "cell failing" + current, "data-verdict": "failing",
                             "title": detail + (verdict.failing ? `; failing: ${verdict.failing}` : "")});
  const node = element("td", attributes, "✗");
  if (verdict.failing) {
    node.append(element("span", {"class": "check"}, verdict.failing));
  }
  return node;
}

function drawGrid(state) {
  const grid = document.getElementById("grid");
  const people = state.participants.length;
  document.getElementById("empty").hidden = people > 0;
  grid.hidden = people === 0;

  const head = element("tr", {}, element("th", {"class": "name-head"}, "step"));
  for (const step of state.steps) {
    head.append(element("th", {"data-step": step}, step,
                        element("span", {"class": "count"}, `${state.passed[step]}/${people} ✓`)));
  }
  grid.tHead.replaceChildren(head);

  const rows = state.participants.map((participant) => {
    const row = element("tr", {"data-name": participant.name});
    const name = element("td", {"class": "name", "title": participant.name},
                         participant.stuck ? "⚠ " : "", participant.name);
    row.append(name);
    if (participant.stuck) {
      row.classList.add("stuck");
    }
    for (const step of state.steps) {
      row.append(cell(participant, step));
    }
    return row;
  });
  grid.tBodies[0].replaceChildren(...rows);
}

const STUCK_SHOWN = 6; // More would not fit; the grid marks every one (⚠).

function drawLists(state) {
  const common = state.common.map((item, index) => {
    const who = item.count === 1 ? "1 participant" : `${item.count} participants`;
    return index === 0
      ? element("li", {}, `step ${item.step}: ${item.failing || "failing"}`, element("span", {"class": "detail"}, who))
      : element("li", {}, `step ${item.step}: ${item.failing || "failing"} (${item.count})`);
  });
  if (common.length === 0) {
    common.push(element("li", {"class": "quiet"}, "no failing check right now"));
  }
  document.getElementById("common-list").replaceChildren(...common);

  const limit = Math.round(state.stuck_after / 60);
  document.getElementById("stuck-rule").textContent = `the same check failing for ${limit} min or more`;
  const stuck = state.stuck.slice(0, STUCK_SHOWN).map((item) =>
    element("li", {}, element("span", {"class": "stuck-mark"}, "⚠"), " ",
            element("b", {}, item.name), ` ${minutesSince(item.since)} min`,
            element("span", {"class": "detail"}, `step ${item.step}: ${item.failing || "failing"}`)));
  if (state.stuck.length > STUCK_SHOWN) {
    stuck.push(element("li", {}, `and ${state.stuck.length - STUCK_SHOWN} more (⚠ in the grid)`));
  }
  if (stuck.length === 0) {
    stuck.push(element("li", {"class": "quiet"}, "nobody"));
  }
  document.getElementById("stuck-list").replaceChildren(...stuck);

  const people = state.participants.length;
  document.getElementById("progress-title").textContent = `Passed, by step (of ${people})`;
  const progress = document.getElementById("progress-steps");
  progress.style.gridTemplateColumns =
    `repeat(${state.steps.length <= 7 ? state.steps.length : Math.ceil(state.steps.length / 2)}, 1fr)`;
  progress.replaceChildren(...state.steps.map((step) =>
    element("span", {"data-step": step, "class": state.passed[step] ? "step" : "step zero"},
            element("span", {"class": "letter"}, step),
            element("span", {"class": "count"}, String(state.passed[step])))));
  const done = state.steps.length ? state.passed[state.steps[state.steps.length - 1]] : 0;
  document.getElementById("summary").textContent =
    `${people} ${people === 1 ? "participant" : "participants"}` +
    (state.stuck.length ? `, ${state.stuck.length} stuck` : "") +
    (people ? `, ${done} through step ${state.steps[state.steps.length - 1]}` : "") +
    (state.names_hidden ? " (names hidden)" : "");
  const join = document.getElementById("join");
  join.hidden = !state.join;
  join.textContent = state.join || "";
}

// The grid's font size: the largest (up to 44 px) at which the whole grid
// fits its area, so that thirty participants fit a projector without scrolling.
function fitGrid() {
  const area = document.getElementById("grid-area");
  const grid = document.getElementById("grid");
  let low = 8, high = 44;
  while (high - low > 0.5) {
    const middle = (low + high) / 2;
    grid.style.fontSize = `${middle}px`;
    if (grid.offsetHeight <= area.clientHeight && grid.offsetWidth <= area.clientWidth) {
      low = middle;
    } else {
      high = middle;
    }
  }
  grid.style.fontSize = `${low}px`;
}

function live(text, kind) {
  const node = document.getElementById("live");
  node.textContent = text;
  node.className = kind;
}

async function poll() {
  try {
    const answer = await fetch("state.json", {cache: "no-store"});
    if (!answer.ok) {
      throw new Error(`HTTP ${answer.status}`);
    }
    const state = await answer.json();
    clockOffset = Date.parse(state.now) - Date.now();
    drawLists(state);
    if (state.version !== shownVersion || state.stuck.length) {
      drawGrid(state);
      fitGrid();
      shownVersion = state.version;
    }
    live(`● live, ${clockTime(state.now)}`, "live-ok");
  } catch (error) {
    live(`✗ the room does not answer (${error.message}); trying again`, "live-lost");
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener("resize", fitGrid);
poll();
