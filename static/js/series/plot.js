// What the series views share for drawing: one layout for every chart (legend in a row
// above it) and a Plotly call that waits for Plotly.js, which the page may load after them.

import { plotConfig } from "../views/gradients.js";

let plotly = null;

/** Resolves with Plotly once its script has run (at once if it already has). */
export function whenPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotly) {
    plotly = new Promise((resolve) => {
      const poll = setInterval(() => {
        if (!window.Plotly) return;
        clearInterval(poll);
        resolve(window.Plotly);
      }, 50);
    });
  }
  return plotly;
}

/** Draw (or redraw) a chart once Plotly is there; `name` names its PNG download. */
export async function react(element, traces, layout, name) {
  const Plotly = await whenPlotly();
  // on a phone, two legend entries a row: one a row would leave little room for the plot
  const narrow = element.clientWidth > 0 && element.clientWidth < 600;
  const legend = narrow ? { ...layout.legend, entrywidth: 0.5, entrywidthmode: "fraction" } : layout.legend;
  return Plotly.react(element, traces, { ...layout, legend }, plotConfig(name));
}

/** Append points to traces of a chart drawn by `react`. */
export async function extend(element, update, indices) {
  const Plotly = await whenPlotly();
  if (element.data) Plotly.extendTraces(element, update, indices);
}

/** A chart's layout: its legend in a row above the plot, which grows the top margin to fit
 *  it (below the plot it would cover the axis labels on a phone). */
export function chartLayout(xaxis, yaxis) {
  return {
    margin: { l: 56, r: 12, t: 8, b: 40 },
    legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom", font: { size: 11 } },
    xaxis: { automargin: true, ...xaxis },
    yaxis: { automargin: true, ...yaxis },
  };
}
