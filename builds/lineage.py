"""A gold image's lineage as a graph: gold versions -> layer versions -> builds -> artifacts. Pure.

The view gathers the rows (with their relations prefetched); `graph` turns them into nodes in
four columns and the edges between them, and marks what is revoked or out of date:
- a gold version is out of date when a newer published gold version of the image exists;
- a build (and what it produced) inherits "revoked" or "out of date" from its gold version; a
  failed or canceled build made nothing, so it is never "out of date";
- a gold-only build's edge comes straight from its gold version, drawn around the layer column.
`place` gives every node coordinates for the server-drawn SVG.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from builds.versions import Version

COLUMNS = ("Gold versions", "Layer versions", "Builds", "Artifacts")
NOTHING_MADE = ("failed", "canceled")  # build states that produced no image: never "out of date"


@dataclass
class Node:
    key: str
    column: int
    label: str
    detail: str = ""
    url: str = ""
    marks: list[str] = field(default_factory=list)  # "revoked", "out-of-date", "deprecated", "failed", "draft"
    title: str = ""  # the full text behind a shortened label (an artifact's id)
    x: float = 0
    y: float = 0

    @property
    def caption(self) -> str:
        """The second line: the detail, then the marks the detail does not already say."""
        extra = [mark.replace("-", " ") for mark in self.marks if mark != self.detail]
        return " · ".join(part for part in [self.detail, *extra] if part)

    @property
    def mark(self) -> str:
        """The most serious mark, which decides the node's colour."""
        for mark in ("revoked", "failed", "out-of-date", "deprecated", "draft"):
            if mark in self.marks:
                return mark
        return ""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    direct: bool = False  # a gold-only build's edge: from the gold version, around the layer column


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: float = 0
    height: float = 0
    column_x: tuple[float, ...] = ()

    def column(self, index: int) -> list[Node]:
        return [node for node in self.nodes if node.column == index]

    def paths(self, node_width: float, node_height: float) -> list[tuple[Edge, str]]:
        """Cubic curves from the right edge of each source to the left edge of its target."""
        where = {node.key: node for node in self.nodes}
        drawn = []
        layers = self.column(1)
        below_layers = max((node.y + node_height for node in layers), default=0) + 6
        for edge in self.edges:
            source, target = where.get(edge.source), where.get(edge.target)
            if source is None or target is None:
                continue
            x1, y1 = source.x + node_width, source.y + node_height / 2
            x2, y2 = target.x, target.y + node_height / 2
            if edge.direct and layers:
                # Down the gap before the layer column, under its last node, up the gap after it:
                # a gold-only build is never drawn as if it went through a layer.
                gap_in = x1 + (layers[0].x - x1) / 2
                gap_out = layers[0].x + node_width + (x2 - layers[0].x - node_width) / 2
                low = max(below_layers, y1, y2)
                drawn.append((edge, f"M{x1:.0f},{y1:.0f} L{gap_in:.0f},{y1:.0f} L{gap_in:.0f},{low:.0f} "
                                    f"L{gap_out:.0f},{low:.0f} L{gap_out:.0f},{y2:.0f} L{x2:.0f},{y2:.0f}"))
                continue
            middle = (x1 + x2) / 2
            drawn.append((edge, f"M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"))
        return drawn


@dataclass(frozen=True)
class GoldRow:
    key: str
    version: str
    status: str  # draft, published, deprecated, revoked
    url: str = ""


@dataclass(frozen=True)
class LayerRow:
    key: str
    label: str  # dept/layer@version
    url: str = ""


@dataclass(frozen=True)
class ArtifactRow:
    key: str
    label: str
    detail: str  # the full id or URI


@dataclass(frozen=True)
class BuildRow:
    key: str
    label: str
    state: str
    gold_key: str
    layer_keys: tuple[str, ...]
    artifacts: tuple[ArtifactRow, ...]
    url: str = ""


def newest_published(golds: Iterable[GoldRow]) -> str | None:
    """Key of the newest published gold version (the one nothing is out of date against)."""
    published = [gold for gold in golds if gold.status == "published"]
    if not published:
        return None
    return max(published, key=lambda gold: Version.parse(gold.version)).key


def graph(golds: Sequence[GoldRow], layers: Sequence[LayerRow], builds: Sequence[BuildRow]) -> Graph:
    newest = newest_published(golds)
    newest_version = Version.parse(next(g.version for g in golds if g.key == newest)) if newest else None
    nodes: list[Node] = []
    edges: list[Edge] = []
    gold_marks: dict[str, list[str]] = {}
    for gold in sorted(golds, key=lambda g: Version.parse(g.version), reverse=True):
        marks: list[str] = []
        if gold.status == "revoked":
            marks.append("revoked")
        elif gold.status == "draft":
            marks.append("draft")
        elif newest_version is not None and Version.parse(gold.version) < newest_version:
            marks.append("out-of-date")
        if gold.status == "deprecated":
            marks.append("deprecated")
        gold_marks[gold.key] = marks
        nodes.append(Node(gold.key, 0, gold.version, gold.status, gold.url, marks))
    used_layers = {key for build in builds for key in build.layer_keys}
    # A layer version is flagged only when every build that used it is (one used with the newest
    # gold version as well is not out of date).
    layer_marks: dict[str, set[str]] = {}
    for build in builds:
        if build.state in NOTHING_MADE:
            continue  # a failed or canceled build made nothing that could be out of date
        inherited = {mark for mark in gold_marks.get(build.gold_key, []) if mark in ("revoked", "out-of-date")}
        for key in build.layer_keys:
            layer_marks[key] = layer_marks[key] & inherited if key in layer_marks else inherited
    for layer in layers:
        if layer.key in used_layers:
            nodes.append(Node(layer.key, 1, layer.label, "", layer.url, sorted(layer_marks.get(layer.key, ()))))
    layer_edges: set[tuple[str, str]] = set()
    for build in builds:
        inherited = [mark for mark in gold_marks.get(build.gold_key, []) if mark in ("revoked", "out-of-date")
                     and not (mark == "out-of-date" and build.state in NOTHING_MADE)]
        marks = inherited + (["failed"] if build.state == "failed" else [])
        detail = build.state if build.layer_keys else f"{build.state} · gold only"
        nodes.append(Node(build.key, 2, build.label, detail, build.url, marks))
        if build.layer_keys:
            for key in build.layer_keys:
                layer_edges.add((build.gold_key, key))
                edges.append(Edge(key, build.key))
        else:
            edges.append(Edge(build.gold_key, build.key, direct=True))
        for artifact in build.artifacts:
            nodes.append(Node(artifact.key, 3, artifact.label, "", "", list(inherited), title=artifact.detail))
            edges.append(Edge(build.key, artifact.key))
    edges = [Edge(source, target) for source, target in sorted(layer_edges)] + edges
    return Graph(nodes, edges)


def place(found: Graph, *, node_width: float = 190, node_height: float = 34, row_gap: float = 12,
          column_gap: float = 70, top: float = 30) -> Graph:
    """Stack each column's nodes top to bottom; the tallest column sets the height."""
    column_x = tuple(index * (node_width + column_gap) for index in range(len(COLUMNS)))
    tallest = 0
    for index in range(len(COLUMNS)):
        for row, node in enumerate(found.column(index)):
            node.x = column_x[index]
            node.y = top + row * (node_height + row_gap)
            tallest = max(tallest, row + 1)
    found.column_x = column_x
    found.width = column_x[-1] + node_width
    found.height = top + max(tallest, 1) * (node_height + row_gap)
    return found
