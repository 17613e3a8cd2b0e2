"""Learned workflows as text for a terminal, Graphviz DOT, or JSON (pure; the CLI prints)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from sidecar.workflows.learn import FLEET_GROUP, Walk, Workflow, WorkflowSet

__all__ = ["select", "render_text", "render_dot", "render_json", "describe_walk", "MAIN_PATH"]

MAIN_PATH = 8  # steps shown per entry key's main path


def select(workflows: WorkflowSet, group: str | None = None) -> list[Workflow]:
    """The workflows to show: every group's (and the fleet's when there are several groups),
    one group's, the fleet's ("*"), or the group of a host name. ValueError when none fits."""
    if group is None:
        chosen = [workflows.groups[g] for g in sorted(workflows.groups)]
        if len(chosen) != 1:
            chosen.append(workflows.fleet)
        return chosen
    if group == FLEET_GROUP:
        return [workflows.fleet]
    for name in (group, workflows.group_of(group)):
        if name in workflows.groups:
            return [workflows.groups[name]]
    known = ", ".join(sorted(workflows.groups)) or "none"
    raise ValueError(f"no workflow for group or host {group!r}; groups: {known}, or '*'")


def _grouping_rule(workflows: WorkflowSet) -> str:
    pattern = workflows.grouping.pattern
    if pattern:
        return f"by the pattern {pattern!r}"
    return "by name without its trailing number"


def describe_walk(start: str, walk: Walk) -> str:
    """start -> a -> b (repeats) -> ... with a loop back shown as `-> back to x`."""
    shown = [start, *walk.keys]
    parts = [f"{key} (repeats)" if key in walk.repeats else key for key in shown]
    text = " -> ".join(parts)
    if walk.loops_to is not None:
        text += f" -> back to {walk.loops_to}"
    return text


def _text_one(workflow: Workflow) -> list[str]:
    title = "all hosts (for groups training did not see)" if workflow.group == FLEET_GROUP else ""
    lines = [
        f"group {workflow.group}{': ' + title if title else ''}",
        f"  {workflow.hosts:,} hosts, {workflow.events:,} events, {len(workflow.keys)} keys, "
        f"{workflow.edge_count} edges; pruned {workflow.pruned_edges} rare transitions "
        f"({workflow.pruned_transitions:,} events)",
        f"  entry keys: {', '.join(workflow.entries) or '-'}",
        "  main paths (the most likely successor at each step):",
    ]
    for entry in workflow.entries:
        lines.append(f"    {describe_walk(entry, workflow.main_path(entry, MAIN_PATH))}")
    lines.append("  successors (probability):")
    width = max((len(k) for k in workflow.keys), default=0)
    for key, count in sorted(workflow.keys.items(), key=lambda kv: (-kv[1], kv[0])):
        following = "  ".join(f"{s.key} {s.probability:.2f}" for s in workflow.successors(key))
        lines.append(f"    {key:<{width}} {count:>7,}x -> {following or '(end)'}")
    return lines


def render_text(workflows: WorkflowSet, chosen: Sequence[Workflow], title: str) -> str:
    lines = [
        f"workflows of {title}: hosts grouped {_grouping_rule(workflows)}; an edge needs "
        f"{workflows.min_count}+ transitions and {workflows.min_share:.0%}+ of a key's successors",
    ]
    for workflow in chosen:
        lines.append("")
        lines.extend(_text_one(workflow))
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _quote(text: str) -> str:
    return f'"{_escape(text)}"'


def _node(workflow: Workflow, key: str) -> str:
    # Ids carry the group: the same key is a different node in each group's cluster.
    return _quote(f"{workflow.group}|{key}")


def render_dot(chosen: Sequence[Workflow], title: str) -> str:
    """One cluster per group; entry keys drawn with a double border, edge width by
    probability."""
    lines = [
        f"digraph {_quote('workflow ' + title)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for index, workflow in enumerate(chosen):
        entries = set(workflow.entries)
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_quote(f'{workflow.group} ({workflow.hosts} hosts)')};")
        for key, count in sorted(workflow.keys.items()):
            # A literal backslash-n: DOT's line break inside a label.
            label = f'"{_escape(key)}\\n{count:,}"'
            extra = ", peripheries=2" if key in entries else ""
            lines.append(f"    {_node(workflow, key)} [label={label}{extra}];")
        for key in sorted(workflow.edges):
            for s in workflow.successors(key):
                lines.append(
                    f"    {_node(workflow, key)} -> {_node(workflow, s.key)} "
                    f'[label="{s.probability:.2f}", penwidth={0.5 + 3 * s.probability:.2f}];'
                )
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_json(
    workflows: WorkflowSet, chosen: Sequence[Workflow], model: str, version: str
) -> str:
    data = {
        "model": model,
        "version": version,
        "grouping": workflows.grouping.to_json(),
        "min_count": workflows.min_count,
        "min_share": workflows.min_share,
        "workflows": [w.to_json() for w in chosen],
    }
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
