"""The plugin registry: registration in code, validation, entry points, isolation, lookups."""

from __future__ import annotations

import inspect
import re
import types
from dataclasses import dataclass, field

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from toy_domains import VectorDomain, make_domain_class

import flowbridge
from flowbridge import plugins
from flowbridge.config import ConfigError
from flowbridge.domain import Domain, PairedDataset, PairedSplit
from flowbridge.plugins import (
    MissingOptionError,
    PluginError,
    Registry,
    UnknownNameError,
    UnknownOptionError,
    isolated,
)

# The tests of each hook, by hook name (tests/test_docs_hooks.py checks every hook has some).
HOOK_TESTS: dict[str, list[str]] = {}


def covers(*hooks: str):
    def mark(test):
        for hook in hooks:
            HOOK_TESTS.setdefault(hook, []).append(test.__name__)
        return test

    return mark


DOMAINS, DATASETS = "flowbridge_register_domains", "flowbridge_register_datasets"


def make_plugin(name: str, domains=(), datasets=()) -> types.ModuleType:
    """A plugin module that registers ``domains`` and ``datasets`` (classes or anything)."""
    module = types.ModuleType(name)

    @flowbridge.hookimpl
    def flowbridge_register_domains(register):
        for cls in domains:
            register(cls)

    @flowbridge.hookimpl
    def flowbridge_register_datasets(register):
        for cls in datasets:
            register(cls)

    module.flowbridge_register_domains = flowbridge_register_domains
    module.flowbridge_register_datasets = flowbridge_register_datasets
    return module


class PairsDataset(PairedDataset):
    """Vectors paired with themselves."""

    name = "pairs"
    domains = ("vector", "vector-b")

    def __init__(self, size: int = 4):
        self.options = {"size": size}

    def split(self, name):
        items = list(torch.arange(self.options["size"], dtype=torch.float32).unsqueeze(1))
        return PairedSplit(items, items)


def dataset_class(**attributes) -> type[PairedDataset]:
    return type("CustomDataset", (PairsDataset,), attributes)


def domain_class(**attributes) -> type[Domain]:
    return type("CustomDomain", (VectorDomain,), attributes)


# -- registering domains and datasets -------------------------------------------------------
@covers(DOMAINS, DATASETS)
def test_registered_classes_are_listed_and_built_with_options():
    second = make_domain_class("vector-b")
    with isolated(make_plugin("toy", [VectorDomain, second], [PairsDataset])) as registry:
        assert registry.domains() == {"vector": VectorDomain, "vector-b": second}
        assert registry.datasets() == {"pairs": PairsDataset}
        # The module-level functions use the isolated registry inside the block.
        assert plugins.domains() == registry.domains()
        domain = plugins.get_domain("vector", features=3)
        assert isinstance(domain, VectorDomain) and domain.features == 3
        assert plugins.get_dataset("pairs", size=2).split("train").a[1].item() == 1.0


@covers(DOMAINS)
def test_hook_implementations_may_take_no_arguments():
    module = types.ModuleType("silent")
    module.flowbridge_register_domains = flowbridge.hookimpl(lambda: None)
    with isolated(module) as registry:
        assert registry.domains() == {}
        assert [p.hooks for p in registry.plugins()] == [(DOMAINS,)]


class _Abstract(Domain):
    name = "abstract"

    def build_encoder(self, spec):
        raise NotImplementedError


class _NotADomain:
    name = "plain"


BAD_DOMAINS = {
    "not a class": (VectorDomain(), "pass the class VectorDomain itself, not an instance"),
    "not a subclass": (_NotADomain, "not a subclass of flowbridge.Domain"),
    "function": (len, "expected a subclass of flowbridge.Domain"),
    "abstract": (_Abstract, "does not implement build_decoder, collate,"),
    "name missing": (domain_class(name=None), "has name None"),
    "name upper case": (domain_class(name="Image"), "has name 'Image'"),
    "name with space": (domain_class(name="my image"), "has name 'my image'"),
    "name leading dash": (domain_class(name="-x"), "has name '-x'"),
    "name not str": (domain_class(name=3), "has name 3"),
    "negative residual": (domain_class(default_residual_features=-1), "features -1"),
    "float residual": (domain_class(default_residual_features=2.0), "features 2.0"),
    "bool residual": (domain_class(default_residual_features=True), "features True"),
}


@covers(DOMAINS)
@pytest.mark.parametrize("case", BAD_DOMAINS, ids=list(BAD_DOMAINS))
def test_invalid_domain_classes_fail_naming_plugin_and_problem(case):
    cls, problem = BAD_DOMAINS[case]
    with isolated() as registry:
        with pytest.raises(PluginError, match=re.escape(problem)) as info:
            registry.register(make_plugin("broken", [cls]))
        assert "plugin 'broken'" in str(info.value)
        assert registry.domains() == {}


BAD_DATASETS = {
    "not a subclass": (VectorDomain, "not a subclass of flowbridge.PairedDataset"),
    "one domain": (dataset_class(domains=("vector",)), "expected a pair of domain names"),
    "three domains": (dataset_class(domains=("a", "b", "c")), "expected a pair"),
    "a string": (dataset_class(domains="vector"), "expected a pair"),
    "bad domain name": (dataset_class(domains=("vector", "Text")), "has a domain name 'Text'"),
    "no name": (dataset_class(name=""), "has name ''"),
    "no splits": (dataset_class(splits=()), "expected a non-empty tuple of split names"),
    "split not str": (dataset_class(splits=("train", 1)), "has splits ('train', 1)"),
}


@covers(DATASETS)
@pytest.mark.parametrize("case", BAD_DATASETS, ids=list(BAD_DATASETS))
def test_invalid_dataset_classes_fail_naming_plugin_and_problem(case):
    cls, problem = BAD_DATASETS[case]
    with isolated() as registry:
        with pytest.raises(PluginError, match=re.escape(problem)) as info:
            registry.register(make_plugin("broken", datasets=[cls]))
        assert "plugin 'broken'" in str(info.value)


@covers(DOMAINS)
@given(name=st.text(alphabet="aZ0_- .é", max_size=6))
def test_a_domain_name_is_accepted_exactly_when_it_is_lowercase_digits_dash_underscore(name):
    valid = bool(name) and name[0] in "a0" and set(name) <= set("a0_-")
    with isolated() as registry:
        if valid:
            registry.register(make_plugin("p", [domain_class(name=name)]))
            assert list(registry.domains()) == [name]
        else:
            with pytest.raises(PluginError, match="lowercase letters"):
                registry.register(make_plugin("p", [domain_class(name=name)]))


@covers(DOMAINS)
def test_duplicate_domain_names_fail_naming_both_plugins():
    with isolated(make_plugin("first", [VectorDomain])) as registry:
        with pytest.raises(PluginError, match="plugin 'second' .* plugin 'first' already"):
            registry.register(make_plugin("second", [domain_class()]))
        with pytest.raises(PluginError, match="plugin 'again' .* itself already"):
            registry.register(make_plugin("again", [domain_class(name="x")] * 2))
        assert registry.domains() == {"vector": VectorDomain}


@covers(DATASETS)
def test_duplicate_dataset_names_fail():
    registry = Registry(entry_points=False)
    registry.register(make_plugin("first", datasets=[PairsDataset]))
    with pytest.raises(PluginError, match="dataset 'pairs'.*plugin 'first' already"):
        registry.register(make_plugin("second", datasets=[dataset_class()]))


@covers(DOMAINS, DATASETS)
def test_a_failed_registration_leaves_no_trace():
    plugin = make_plugin("half", [VectorDomain], [dataset_class(domains=("vector",))])
    with isolated() as registry:
        with pytest.raises(PluginError):
            registry.register(plugin)
        assert registry.domains() == {} and registry.datasets() == {}
        assert not registry.manager.is_registered(plugin)
        # Fixed, the same name registers cleanly.
        registry.register(make_plugin("half", [VectorDomain]), name="half")
        assert list(registry.domains()) == ["vector"]


@covers(DOMAINS)
def test_a_hook_that_raises_becomes_a_plugin_error_naming_plugin_and_hook():
    module = types.ModuleType("crashing")

    @flowbridge.hookimpl
    def flowbridge_register_domains(register):
        raise ZeroDivisionError("oops")

    module.flowbridge_register_domains = flowbridge_register_domains
    with isolated() as registry:
        with pytest.raises(PluginError, match="plugin 'crashing' failed in " + DOMAINS) as info:
            registry.register(module)
        assert "ZeroDivisionError: oops" in str(info.value)
        assert isinstance(info.value.__cause__, ZeroDivisionError)


@covers(DOMAINS)
def test_a_misspelled_hook_is_caught():
    module = types.ModuleType("typo")
    module.flowbridge_register_domain = flowbridge.hookimpl(lambda register: None)
    known = "the hooks are: flowbridge_register_datasets, flowbridge_register_domains ("
    with isolated() as registry:
        with pytest.raises(PluginError, match="plugin 'typo'.*flowbridge_register_domain'") as info:
            registry.register(module)
        assert known in str(info.value)
        assert not registry.manager.has_plugin("typo")


@covers(DOMAINS)
def test_a_hook_without_the_marker_is_caught():
    module = types.ModuleType("unmarked")
    module.flowbridge_register_domains = lambda register: register(VectorDomain)
    with pytest.raises(PluginError, match="not decorated with @flowbridge.hookimpl"):
        Registry(entry_points=False).register(module)


@covers(DOMAINS, DATASETS)
@pytest.mark.parametrize("hook", [DOMAINS, DATASETS])
def test_a_hook_that_returns_its_classes_instead_of_registering_them_is_caught(hook):
    # The other hook registers its class, so the test also sees that nothing is left behind.
    module = make_plugin("returning", [VectorDomain], [PairsDataset])
    setattr(module, hook, flowbridge.hookimpl(lambda register: [PairsDataset]))
    with isolated() as registry:
        with pytest.raises(
            PluginError,
            match=rf"^plugin 'returning': {hook} returned \[<class '[\w.]+PairsDataset'>\], but "
            r"hooks return nothing; call register\(cls\) once per class instead$",
        ):
            registry.register(module)
        assert registry.domains() == {} and registry.datasets() == {}
        assert not registry.manager.has_plugin("returning")


@pytest.mark.parametrize(
    ("plugin", "described"),
    [(types.ModuleType("tabular.domain"), "module tabular.domain"), (object(), "object object")],
    ids=["module", "object"],
)
def test_a_plugin_that_implements_no_hook_is_caught(plugin, described):
    with isolated() as registry:
        with pytest.raises(
            PluginError,
            match=rf"^plugin 'tab' \({described}\) implements none of the hooks \("
            rf"{DATASETS}, {DOMAINS}\), so it would register nothing; register the module that "
            r"defines the @flowbridge.hookimpl functions$",
        ):
            registry.register(plugin, name="tab")
        assert not registry.manager.has_plugin("tab")


@covers(DATASETS)
def test_a_hook_with_a_wrong_argument_name_is_caught():
    module = types.ModuleType("wrongarg")
    module.flowbridge_register_datasets = flowbridge.hookimpl(lambda add: None)
    with pytest.raises(PluginError, match="plugin 'wrongarg' cannot be registered.*add"):
        Registry(entry_points=False).register(module)


def test_registering_a_plugin_twice_fails_and_unregister_removes_its_classes():
    plugin = make_plugin("toy", [VectorDomain])
    with isolated(plugin) as registry:
        with pytest.raises(
            PluginError,
            match=r"^plugin 'toy': module toy is already registered as 'toy'; it needs no "
            r"second registration \(to register it again, unregister\('toy'\) first\)$",
        ):
            registry.register(plugin)
        # Under another name it is still the same module, and the message says so.
        with pytest.raises(PluginError, match="^plugin 'toy2': module toy is already .* as 'toy'"):
            registry.register(plugin, name="toy2")
        assert registry.unregister("toy") is True
        assert registry.unregister("toy") is False  # nothing left to remove
        assert registry.domains() == {}
        assert registry.register(plugin) == "toy"


def test_a_name_taken_by_another_plugin_is_refused_naming_that_plugin():
    with isolated(make_plugin("toy", [VectorDomain])) as registry:
        with pytest.raises(
            PluginError,
            match=r"^plugin 'toy': that name is taken by module toy; pass another name, or "
            r"unregister\('toy'\) first",
        ):
            registry.register(make_plugin("other", [domain_class(name="other")]), name="toy")
        assert list(registry.domains()) == ["vector"]


def test_isolated_restores_the_previous_registry_even_after_an_error():
    with isolated(make_plugin("outer", [VectorDomain])) as outer:
        with pytest.raises(RuntimeError), isolated(make_plugin("inner", [domain_class(name="in")])):
            assert list(plugins.domains()) == ["in"]
            raise RuntimeError
        assert plugins.current() is outer
        assert list(plugins.domains()) == ["vector"]


def test_module_level_register_uses_the_current_registry():
    with isolated() as registry:
        assert plugins.register(make_plugin("toy", [VectorDomain])) == "toy"
        assert list(registry.domains()) == ["vector"]
        plugins.unregister("toy")
        assert plugins.domains() == {}
        assert plugins.get_plugin_manager() is registry.manager


# -- unknown names --------------------------------------------------------------------------
def test_unknown_names_raise_a_key_and_value_error_listing_registered_names():
    with isolated(make_plugin("toy", [VectorDomain], [PairsDataset])):
        with pytest.raises(KeyError, match=r"unknown domain 'imag'; registered: vector$"):
            plugins.get_domain("imag")
        with pytest.raises(
            ValueError,
            match=r"^unknown dataset 'pair' \(did you mean 'pairs'\?\); registered: pairs$",
        ):
            plugins.get_dataset("pair")
        with pytest.raises(
            UnknownNameError, match=r"^unknown domain 'vectro' \(did you mean 'vector'\?\);"
        ):
            plugins.get_domain("vectro")
    with isolated(), pytest.raises(UnknownNameError, match="none .is the plugin installed"):
        plugins.get_domain("image")


# -- unknown options ------------------------------------------------------------------------
def test_unknown_options_are_named_with_the_valid_ones_and_the_config_key():
    with isolated(make_plugin("toy", [VectorDomain], [PairsDataset])):
        with pytest.raises(
            UnknownOptionError,
            match=r"^domain 'vector' has no option 'featurs' \(did you mean 'features'\?\); its "
            r"options are: features, hidden\. .*domains\.a\.options or domains\.b\.options\)$",
        ):
            plugins.get_domain("vector", featurs=3, hidden=8)
        # A ConfigError for the command line, a TypeError as Python's own would be.
        with pytest.raises(
            ConfigError,
            match=r"no options 'sise' \(did you mean 'size'\?\), 'red'; "
            r"its options are: size\. .*data\.options",
        ) as info:
            plugins.get_dataset("pairs", sise=2, red=True)
        assert isinstance(info.value, TypeError)


def test_a_required_option_left_out_is_named_with_the_config_key():
    def required(self, features, *, scale, hidden=32, **extra):
        VectorDomain.__init__(self, features, hidden)

    strict = domain_class(name="strict", __init__=required)
    with isolated(make_plugin("toy", [strict])):
        with pytest.raises(
            MissingOptionError,
            match=r"^domain 'strict' needs the options 'features', 'scale', which have no "
            r"default; give them \(in a run config: domains\.a\.options or domains\.b\.options\)$",
        ) as info:
            plugins.get_domain("strict", hidden=8)
        assert isinstance(info.value, ConfigError) and isinstance(info.value, TypeError)
        with pytest.raises(MissingOptionError, match=r"needs the option 'scale', which has no"):
            plugins.get_domain("strict", features=3, other=1)
        assert plugins.get_domain("strict", features=3, scale=2).features == 3


def test_constructors_taking_any_option_or_raising_type_errors_are_left_to_themselves():
    def any_options(self, **options):
        VectorDomain.__init__(self)
        self.extra = options

    def typed(self, features=4, hidden=32):
        if not isinstance(features, int):
            raise TypeError(f"features must be an int, got {features!r}")
        VectorDomain.__init__(self, features, hidden)

    flexible = domain_class(name="flexible", __init__=any_options)
    checked = domain_class(name="checked", __init__=typed)
    with isolated(make_plugin("toy", [flexible, checked])):
        assert plugins.get_domain("flexible", scale=2).extra == {"scale": 2}
        with pytest.raises(TypeError, match=r"^features must be an int, got 2.5$") as info:
            plugins.get_domain("checked", features=2.5)
        assert not isinstance(info.value, UnknownOptionError)


# -- entry points ---------------------------------------------------------------------------
@dataclass
class FakeDistribution:
    """Stands in for importlib.metadata.Distribution: its name and version."""

    name: str
    version: str = "1.0"

    @property
    def metadata(self) -> dict[str, str]:
        return {"Name": self.name}


@dataclass
class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint; counts how often it is loaded."""

    name: str
    plugin: object = None
    error: Exception | None = None
    loads: list = field(default_factory=list)
    dist: FakeDistribution | None = None

    @property
    def value(self) -> str:
        return f"fake_{self.name}"

    def load(self):
        self.loads.append(self.name)
        if self.error is not None:
            raise self.error
        return self.plugin


@pytest.fixture
def entry_points(monkeypatch):
    """Install fake entry points ``a`` (domain "vector") and ``b`` (domain "other")."""
    found = [
        FakeEntryPoint("a", make_plugin("a", [VectorDomain])),
        FakeEntryPoint("b", make_plugin("b", [domain_class(name="other")])),
    ]
    monkeypatch.setattr(plugins, "_entry_points", lambda: found)
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    return found


@covers(DOMAINS)
def test_entry_points_load_lazily_on_first_use(entry_points):
    registry = Registry()
    assert [ep.loads for ep in entry_points] == [[], []]
    assert list(registry.domains()) == ["other", "vector"]
    registry.domains()
    assert [ep.loads for ep in entry_points] == [["a"], ["b"]]
    assert [p.name for p in registry.plugins()] == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "loaded"),
    [(None, ["a", "b"]), ("", []), ("b", ["b"]), (" a , b ,", ["a", "b"])],
    ids=["unset", "empty", "one", "spaces"],
)
def test_the_environment_variable_picks_entry_points(entry_points, monkeypatch, value, loaded):
    if value is not None:
        monkeypatch.setenv(plugins.ENV_VAR, value)
    assert [p.name for p in Registry().plugins()] == loaded
    assert [ep.name for ep in entry_points if ep.loads] == loaded


def test_the_environment_variable_must_name_installed_plugins(entry_points, monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, "a,imgae")
    with pytest.raises(PluginError, match="not installed: imgae; installed: a, b"):
        Registry().domains()


def test_a_plugin_that_fails_to_import_is_named_and_keeps_failing(entry_points):
    entry_points[1].error = ImportError("No module named 'scipy'")
    registry = Registry()
    for _ in range(2):
        with pytest.raises(
            PluginError,
            match=r"^plugin 'b' \(module 'fake_b'\) failed to import: ImportError: No module "
            r"named 'scipy'\. Fix or uninstall it, or leave it out: FLOWBRIDGE_LOAD_PLUGINS='a'\.$",
        ) as info:
            registry.domains()
        assert isinstance(info.value.__cause__.__cause__, ImportError)
    assert entry_points[0].loads == ["a"]  # loaded once, kept


def test_every_broken_plugin_is_named_with_its_distribution_and_the_others_load(
    entry_points, monkeypatch
):
    entry_points[0].error = ImportError("No module named 'flowbridge_tabluar'")
    entry_points[0].dist = FakeDistribution("flowbridge-tabtypo")
    entry_points[1].plugin = types.ModuleType("b_domains")
    entry_points[1].dist = FakeDistribution("flowbridge-tabtypo")
    entry_points.append(FakeEntryPoint("c", make_plugin("c", [VectorDomain])))
    registry = Registry()
    with pytest.raises(PluginError) as info:
        registry.domains()
    lines = str(info.value).splitlines()
    assert lines[0] == "2 installed plugins failed to load:"
    assert re.fullmatch(
        r"  plugin 'a' \(module 'fake_a'\) failed to import: ImportError: No module named "
        r"'flowbridge_tabluar' \(installed by flowbridge-tabtypo\)",
        lines[1],
    )
    assert re.fullmatch(
        r"  plugin 'b' \(module b_domains\) implements none of the hooks .*"
        r"\(installed by flowbridge-tabtypo\)",
        lines[2],
    )
    assert lines[3] == (
        "Fix or uninstall them (pip uninstall flowbridge-tabtypo), or leave them out: "
        "FLOWBRIDGE_LOAD_PLUGINS='c'."
    )
    # The good plugin loaded, and a listing that asks for them shows the broken ones too.
    listed = {p.name: (p.domains, p.distribution, p.error) for p in registry.plugins(True)}
    assert listed["c"] == ({"vector": VectorDomain}, None, None)
    assert listed["a"][:2] == ({}, "flowbridge-tabtypo")
    assert listed["a"][2].startswith("plugin 'a' (module 'fake_a') failed to import")
    assert "implements none of the hooks" in listed["b"][2]
    # The advice works: leaving them out loads the rest.
    monkeypatch.setenv(plugins.ENV_VAR, "c")
    assert list(Registry().domains()) == ["vector"]


def test_two_installed_plugins_claiming_one_domain_name_are_both_out(entry_points, monkeypatch):
    """Neither is blamed for the other's name, whichever loads first: both are listed as
    broken, and the advice is to keep one of them, not to uninstall a given one."""
    entry_points[0].dist = FakeDistribution("flowbridge-vector")
    impostor = domain_class(name="vector")
    entry_points[1].plugin = make_plugin("b", [impostor])
    entry_points[1].dist = FakeDistribution("vector-impostor")
    entry_points.append(FakeEntryPoint("c", make_plugin("c", [domain_class(name="other")])))
    for order in (entry_points, entry_points[::-1]):
        monkeypatch.setattr(plugins, "_entry_points", lambda order=order: order)
        registry = Registry()
        with pytest.raises(PluginError) as info:
            registry.domains()
        first, second = [ep.name for ep in order if ep.name != "c"]
        assert str(info.value) == (
            f"plugins {first!r}, {second!r} both register domain 'vector'; domain names must "
            "be unique: rename all but one (the name attribute of the registered class) "
            "(installed by flowbridge-vector, vector-impostor). Fix or uninstall it "
            "(keep one of flowbridge-vector and vector-impostor, or load one: "
            "FLOWBRIDGE_LOAD_PLUGINS='a,c'), or leave it out: FLOWBRIDGE_LOAD_PLUGINS='c'."
        )
        listed = {p.name: (p.distribution, p.error) for p in registry.plugins(True)}
        assert listed["c"] == (None, None)
        assert listed["a"][0] == "flowbridge-vector" and listed["b"][0] == "vector-impostor"
        assert listed["a"][1] == listed["b"][1] and "domain 'vector'" in listed["a"][1]
    # Leaving one out, as advised, loads the other.
    monkeypatch.setenv(plugins.ENV_VAR, "b,c")
    assert Registry().domains()["vector"] is impostor

    # A third claimant does not inherit the name the first two lost: all three are out.
    monkeypatch.delenv(plugins.ENV_VAR)
    third = FakeEntryPoint("d", make_plugin("d", [domain_class(name="vector")]))
    third.dist = FakeDistribution("vector-three")
    entry_points.append(third)
    monkeypatch.setattr(plugins, "_entry_points", lambda: entry_points)
    registry = Registry()
    with pytest.raises(PluginError) as info:
        registry.domains()
    assert str(info.value).startswith("plugins 'a', 'b', 'd' all register domain 'vector'")
    assert "(keep one of flowbridge-vector, vector-impostor and vector-three, or load one: " in str(
        info.value
    )
    assert sorted(p.name for p in registry.plugins(True) if p.error) == ["a", "b", "d"]


def test_two_entry_points_with_one_name_fail(entry_points):
    entry_points[1].name = "a"
    with pytest.raises(PluginError, match="plugin 'a' is provided by several entry points"):
        Registry().domains()


def test_registering_in_code_loads_entry_points_first(entry_points):
    registry = Registry()
    with pytest.raises(
        PluginError,
        match=r"^plugin 'a': that name is taken by module a \(loaded by the entry point "
        r"a = 'fake_a'\); pass another name",
    ):
        registry.register(make_plugin("a", []), name="a")


def test_registering_a_module_its_entry_point_loaded_names_the_entry_point(entry_points):
    registry = Registry()
    plugin = entry_points[0].plugin
    with pytest.raises(
        PluginError,
        match=r"^plugin 'again': module a is already registered as 'a' \(loaded by the entry "
        r"point a = 'fake_a'\); it needs no second registration \(to register it again, "
        r"unregister\('a'\) first\)$",
    ):
        registry.register(plugin, name="again")
    # The remedy the message gives works.
    assert registry.unregister("a") is True
    assert registry.register(plugin, name="again") == "again"
    assert list(registry.domains()) == ["other", "vector"]


def test_an_entry_point_naming_a_module_without_hooks_is_caught(entry_points):
    entry_points[1].plugin = types.ModuleType("b_domains")
    registry = Registry()
    with pytest.raises(
        PluginError,
        match=r"^plugin 'b' \(module b_domains\) implements none of the hooks .* make the "
        r"entry point b = 'fake_b' name the module that defines the @flowbridge.hookimpl",
    ):
        registry.domains()


def test_the_installed_signals_example_loads_through_its_entry_point(monkeypatch):
    flowbridge_signals = pytest.importorskip("flowbridge_signals")
    monkeypatch.setenv(plugins.ENV_VAR, "signals")
    with isolated(entry_points=True) as registry:
        assert registry.domains() == {"signal": flowbridge_signals.SignalDomain}
        (info,) = registry.plugins()
        assert (info.name, info.plugin, info.distribution) == (
            "signals",
            flowbridge_signals,
            "flowbridge-signals",
        )
        # What the installed plugins' READMEs show, on an install that already loaded it.
        with pytest.raises(
            PluginError,
            match=r"module flowbridge_signals is already registered as 'signals' \(loaded by "
            r"the entry point signals = 'flowbridge_signals' of flowbridge-signals\)",
        ):
            registry.register(flowbridge_signals)


def test_options_signature_names_a_dataclasss_fields_with_their_defaults():
    @dataclass
    class Options:
        size: int
        widths: list = field(default_factory=lambda: [8, 16])
        loss: str = "bce"

    class Domainish:
        def __init__(self, **options):
            plugins.refuse_unknown_options("domainish", options, ["size", "widths", "loss"], "x")

        __init__.__signature__ = plugins.options_signature(Options)

    class Inherits(Domainish):
        pass

    class OwnInit(Domainish):  # a subclass's own options are its own
        def __init__(self, blur=0.0, **options):
            super().__init__(**options)

    named, open_ended = plugins.constructor_options(Domainish)
    assert named == {"size": inspect.Parameter.empty, "widths": [8, 16], "loss": "bce"}
    assert not open_ended
    assert plugins.constructor_options(Inherits) == (named, False)
    assert plugins.constructor_options(OwnInit) == ({"blur": 0.0}, True)
    with pytest.raises(plugins.UnknownOptionError, match=r"\['los' \(did you mean 'loss'\?\)\]"):
        Domainish(los="l1")
