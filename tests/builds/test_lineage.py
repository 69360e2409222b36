from builds import lineage
from builds.lineage import ArtifactRow, BuildRow, GoldRow, LayerRow


def build(key, gold, layers=(), state="succeeded", artifacts=()):
    return BuildRow(key, key, state, gold, tuple(layers), tuple(ArtifactRow(a, a, a) for a in artifacts))


def test_it_marks_versions_older_than_the_newest_published_as_out_of_date():
    golds = [GoldRow("g1", "1.0.0", "published"), GoldRow("g2", "1.1.0", "published"), GoldRow("g3", "2.0.0", "draft")]
    found = lineage.graph(golds, [], [build("b1", "g1", artifacts=["o1"]), build("b2", "g2")])
    nodes = {node.key: node for node in found.nodes}
    assert nodes["g1"].marks == ["out-of-date"]
    assert nodes["g2"].marks == []
    assert nodes["g3"].marks == ["draft"]
    assert nodes["b1"].marks == ["out-of-date"]
    assert nodes["o1"].marks == ["out-of-date"]
    assert nodes["b2"].marks == []


def test_it_carries_revocation_to_layers_builds_and_artifacts():
    golds = [GoldRow("g1", "1.0.0", "revoked"), GoldRow("g2", "1.1.0", "published")]
    found = lineage.graph(golds, [LayerRow("l1", "web/nginx@1.0.0")],
                          [build("b1", "g1", ["l1"], artifacts=["o1"])])
    nodes = {node.key: node for node in found.nodes}
    assert nodes["g1"].mark == "revoked"
    assert nodes["l1"].mark == "revoked"
    assert nodes["b1"].mark == "revoked"
    assert nodes["o1"].mark == "revoked"


def test_it_links_gold_to_layers_to_builds_to_artifacts():
    found = lineage.graph([GoldRow("g1", "1.0.0", "published")], [LayerRow("l1", "web/nginx@1.0.0")],
                          [build("b1", "g1", ["l1"], artifacts=["o1"]), build("b2", "g1", state="failed")])
    edges = {(edge.source, edge.target) for edge in found.edges}
    assert edges == {("g1", "l1"), ("l1", "b1"), ("b1", "o1"), ("g1", "b2")}
    assert {node.key: node.mark for node in found.nodes}["b2"] == "failed"


def test_it_places_nodes_in_four_columns_and_draws_curves_between_them():
    found = lineage.place(lineage.graph([GoldRow("g1", "1.0.0", "published")], [LayerRow("l1", "web/a@1.0.0")],
                                        [build("b1", "g1", ["l1"], artifacts=["o1"])]))
    xs = sorted({node.x for node in found.nodes})
    assert len(xs) == 4
    assert found.width > xs[-1]
    paths = found.paths(190, 34)
    assert len(paths) == 3
    assert all(d.startswith("M") and " C" in d for _, d in paths)


def test_a_layer_version_also_built_on_the_newest_gold_version_is_not_out_of_date():
    golds = [GoldRow("g1", "1.0.0", "published"), GoldRow("g2", "1.1.0", "published")]
    found = lineage.graph(golds, [LayerRow("l1", "web/a@1.0.0")],
                          [build("b1", "g1", ["l1"]), build("b2", "g2", ["l1"])])
    nodes = {node.key: node for node in found.nodes}
    assert nodes["l1"].marks == []
    assert nodes["b1"].caption == "succeeded · out of date"


def test_failed_and_canceled_builds_are_not_out_of_date():
    golds = [GoldRow("g1", "1.0.0", "published"), GoldRow("g2", "1.1.0", "published")]
    found = lineage.graph(golds, [LayerRow("l1", "web/a@1.0.0")],
                          [build("b1", "g1", ["l1"], state="failed"), build("b2", "g1", ["l1"], state="canceled")])
    nodes = {node.key: node for node in found.nodes}
    assert nodes["b1"].marks == ["failed"] and nodes["b2"].marks == []
    assert nodes["l1"].marks == []  # nothing made from it is out of date


def test_a_gold_only_build_is_drawn_from_its_gold_version_around_the_layers():
    found = lineage.place(lineage.graph(
        [GoldRow("g1", "1.0.0", "published")], [LayerRow("l1", "web/a@1.0.0"), LayerRow("l2", "web/b@1.0.0")],
        [build("b1", "g1", ["l1"]), build("b2", "g1", ["l2"]), build("b3", "g1")]))
    nodes = {node.key: node for node in found.nodes}
    assert nodes["b3"].detail == "succeeded · gold only"
    [(edge, d)] = [(edge, d) for edge, d in found.paths(190, 34) if edge.target == "b3"]
    assert edge.source == "g1" and edge.direct
    layers = found.column(1)
    points = [tuple(float(n) for n in point.lstrip("ML").split(",")) for point in d.split()]
    for x, y in zip([p[0] for p in points], [p[1] for p in points], strict=True):
        for layer in layers:  # no corner of the route lies on a layer node
            assert not (layer.x <= x <= layer.x + 190 and layer.y <= y <= layer.y + 34)
    low = max(point[1] for point in points)
    assert low > max(layer.y + 34 for layer in layers)  # it passes under the layer column
