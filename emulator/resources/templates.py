"""ARM template expressions: the subset real Image Builder deployment templates use. Pure, no I/O.

`evaluate(value, scope, path)` walks a template value (strings, lists, objects; property names
too, as ARM does for `userAssignedIdentities` keys) and replaces each expression string:

- `"[expr]"` is an expression; `"[[..."` is the literal string `"[..."` (ARM's escape);
- expr := call accessor*; call := name "(" [arg ("," arg)*] ")"; arg := call | 'string' (a
  doubled '' is a quote) | integer; accessor := "." name | "[" arg "]".

Functions served: parameters, variables, concat, format, resourceId, resourceGroup, subscription,
uniqueString, guid, plus toLower, toUpper and string. Anything else, or a malformed expression,
raises TemplateError with the path of the offending value (`resources[0].properties.x`), which the
deployments backend answers as ARM's 400 InvalidTemplate.

uniqueString and guid are deterministic in their arguments, as in ARM, but their values are our
own hash (ARM's algorithm is not published): the same inputs give the same name on every run.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FUNCTIONS_URL = "https://aka.ms/arm-functions"
_GUID_NAMESPACE = uuid.UUID("5d1b8a4e-2f0c-4c7e-9a36-0f8e1d2c3b4a")
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class TemplateError(Exception):
    """A template the emulator cannot evaluate; `path` locates the offending value."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class Scope:
    """What expressions can see. `parameters` are resolved values; `variables` are raw template
    values, evaluated on first use (they may use parameters() and other variables())."""

    parameters: dict[str, Any]
    variables: dict[str, Any]
    subscription: dict
    resource_group: dict
    deployment_name: str = ""
    _resolved: dict[str, Any] = field(default_factory=dict)
    _resolving: set[str] = field(default_factory=set)

    def parameter(self, name: str, path: str) -> Any:
        key = _find_key(self.parameters, name)
        if key is None:
            raise TemplateError(path, f"The template parameter '{name}' is not found. Please see "
                                      "https://aka.ms/arm-syntax-parameters for usage details.")
        return self.parameters[key]

    def variable(self, name: str, path: str) -> Any:
        key = _find_key(self.variables, name)
        if key is None:
            raise TemplateError(path, f"The template variable '{name}' is not found. Please see "
                                      "https://aka.ms/arm-syntax-variables for usage details.")
        if key in self._resolved:
            return self._resolved[key]
        if key in self._resolving:
            raise TemplateError(path, f"The template variable '{name}' refers to itself.")
        self._resolving.add(key)
        try:
            value = evaluate(self.variables[key], self, f"variables.{key}")
        finally:
            self._resolving.discard(key)
        self._resolved[key] = value
        return value


def _find_key(mapping: dict, name: str) -> str | None:
    """ARM names (parameters, variables, properties) are case-insensitive."""
    if name in mapping:
        return name
    lowered = name.lower()
    return next((key for key in mapping if key.lower() == lowered), None)


# -- walking values -----------------------------------------------------------------------------

def evaluate(value: Any, scope: Scope, path: str) -> Any:
    """The value with every expression replaced; TemplateError(path, reason) when one fails."""
    if isinstance(value, str):
        return evaluate_string(value, scope, path)
    if isinstance(value, list):
        return [evaluate(item, scope, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            name = evaluate_string(key, scope, f"{path}.{key}")
            result[str(name)] = evaluate(item, scope, f"{path}.{key}")
        return result
    return value


def is_expression(text: str) -> bool:
    return len(text) >= 2 and text.startswith("[") and text.endswith("]") and not text.startswith("[[")


def evaluate_string(text: str, scope: Scope, path: str) -> Any:
    if text.startswith("[["):
        return text[1:]
    if not is_expression(text):
        return text
    node = Parser(text[1:-1], path).parse()
    return _run(node, scope, path)


# -- parsing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    name: str
    args: tuple
    accessors: tuple = ()  # ("prop", name) | ("index", node)


@dataclass(frozen=True)
class Literal:
    value: Any


_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_][\w]*)"
                    r"|(?P<punct>[(),.\[\]]))")


class Parser:
    """Recursive descent over the expression text (without its outer brackets)."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.tokens = self._tokenize(text)
        self.position = 0

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens, index = [], 0
        while index < len(text):
            if text[index:].strip() == "":
                break
            found = _TOKEN.match(text, index)
            if not found:
                raise self.error(f"unexpected character '{text[index:].lstrip()[:1]}'")
            kind = found.lastgroup or ""
            tokens.append((kind, found.group(kind)))
            index = found.end()
        return tokens

    def error(self, reason: str) -> TemplateError:
        return TemplateError(self.path, f"The language expression '{self.text}' is not valid: {reason}.")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("the expression ends too early")
        if value is not None and token[1] != value:
            raise self.error(f"expected '{value}' but found '{token[1]}'")
        self.position += 1
        return token

    def parse(self) -> Call:
        if not self.tokens:
            raise self.error("the expression is empty")
        node = self.call()
        if self.peek() is not None:
            raise self.error(f"unexpected '{self.peek()[1]}' after the expression")
        return node

    def call(self) -> Call:
        kind, name = self.take()
        if kind != "name":
            raise self.error(f"expected a function name but found '{name}'")
        self.take("(")
        args = []
        if self.peek() and self.peek()[1] != ")":
            args.append(self.argument())
            while self.peek() and self.peek()[1] == ",":
                self.take(",")
                args.append(self.argument())
        self.take(")")
        accessors = []
        while self.peek() and self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                kind, prop = self.take()
                if kind != "name":
                    raise self.error(f"expected a property name after '.' but found '{prop}'")
                accessors.append(("prop", prop))
            else:
                accessors.append(("index", self.argument()))
                self.take("]")
        return Call(name, tuple(args), tuple(accessors))

    def argument(self) -> Call | Literal:
        token = self.peek()
        if token is None:
            raise self.error("the expression ends too early")
        kind, text = token
        if kind == "string":
            self.position += 1
            return Literal(text[1:-1].replace("''", "'"))
        if kind == "number":
            self.position += 1
            return Literal(int(text))
        if kind == "name":
            return self.call()
        raise self.error(f"unexpected '{text}'")


# -- evaluation ---------------------------------------------------------------------------------

def _run(node: Call | Literal, scope: Scope, path: str) -> Any:
    if isinstance(node, Literal):
        return node.value
    function = FUNCTIONS.get(node.name.lower())
    if function is None:
        raise TemplateError(path, f"The template function '{node.name}' is not valid (the emulator serves "
                                  f"{', '.join(SERVED)}). Please see {FUNCTIONS_URL} for usage details.")
    args = [_run(arg, scope, path) for arg in node.args]
    value = function(scope, path, args)
    for kind, key in node.accessors:
        value = _access(value, kind, key if kind == "prop" else _run(key, scope, path), path)
    return value


def _access(value: Any, kind: str, key: Any, path: str) -> Any:
    if isinstance(value, dict) and isinstance(key, str):
        found = _find_key(value, key)
        if found is None:
            raise TemplateError(path, f"The language expression property '{key}' doesn't exist, available "
                                      f"properties are '{', '.join(value)}'.")
        return value[found]
    if isinstance(value, list) and isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < len(value):
            raise TemplateError(path, f"The language expression index '{key}' is out of bounds.")
        return value[key]
    raise TemplateError(path, f"The language expression property '{key}' cannot be evaluated on a value "
                              f"of type '{_type_name(value)}'.")


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    return {str: "String", int: "Integer", list: "Array", dict: "Object"}.get(type(value), "Null")


def _arity(name: str, args: list, path: str, least: int, most: int | None = None) -> None:
    if len(args) < least or (most is not None and len(args) > most):
        wanted = str(least) if most == least else f"{least} to {most}" if most is not None else f"at least {least}"
        raise TemplateError(path, f"The template language function '{name}' must have {wanted} argument(s).")


def _strings(name: str, args: list, path: str) -> list[str]:
    if not all(isinstance(arg, str) for arg in args):
        raise TemplateError(path, f"The template language function '{name}' expects its parameters to be of "
                                  "type string.")
    return args


def _parameters(scope: Scope, path: str, args: list) -> Any:
    _arity("parameters", args, path, 1, 1)
    return scope.parameter(*_strings("parameters", args, path), path)


def _variables(scope: Scope, path: str, args: list) -> Any:
    _arity("variables", args, path, 1, 1)
    return scope.variable(*_strings("variables", args, path), path)


def _concat(scope: Scope, path: str, args: list) -> Any:
    _arity("concat", args, path, 1)
    if all(isinstance(arg, list) for arg in args):
        return [item for arg in args for item in arg]
    if any(isinstance(arg, (list, dict)) for arg in args):
        raise TemplateError(path, "The template language function 'concat' expects its parameters to be all "
                                  "arrays or all strings and numbers.")
    return "".join(_as_text(arg) for arg in args)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)\}|[{}]")


def _format(scope: Scope, path: str, args: list) -> str:
    _arity("format", args, path, 1)
    template, values = args[0], args[1:]
    if not isinstance(template, str):
        raise TemplateError(path, "The template language function 'format' expects a format string first.")

    def item(match: re.Match) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        if match.group(1) is None:
            raise TemplateError(path, f"The format string '{template}' is not valid (the emulator serves {{n}} "
                                      "items only).")
        index = int(match.group(1))
        if index >= len(values):
            raise TemplateError(path, f"The format string '{template}' refers to argument {index}, which was not "
                                      "given.")
        return _as_text(values[index])

    return _FORMAT_ITEM.sub(item, template)


def _resource_id(scope: Scope, path: str, args: list) -> str:
    _strings("resourceId", args, path)
    type_at = next((index for index, arg in enumerate(args) if "/" in arg and "." in arg.split("/")[0]), None)
    if type_at is None or type_at > 2:
        raise TemplateError(path, "The template language function 'resourceId' expects a resource type "
                                  "('Namespace/type') among its first three arguments.")
    before, resource_type, names = args[:type_at], args[type_at], args[type_at + 1:]
    subscription = scope.subscription["subscriptionId"]
    group = scope.resource_group["name"]
    if len(before) == 2:
        subscription, group = before
    elif len(before) == 1:
        group = before[0]
    namespace, *types = resource_type.split("/")
    if len(names) != len(types):
        raise TemplateError(path, f"Unable to evaluate template language function 'resourceId': the type "
                                  f"'{resource_type}' requires '{len(types)}' resource name argument(s).")
    segments = "/".join(f"{kind}/{name}" for kind, name in zip(types, names, strict=True))
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{segments}"


def _resource_group(scope: Scope, path: str, args: list) -> dict:
    _arity("resourceGroup", args, path, 0, 0)
    return scope.resource_group


def _subscription(scope: Scope, path: str, args: list) -> dict:
    _arity("subscription", args, path, 0, 0)
    return scope.subscription


def _unique_string(scope: Scope, path: str, args: list) -> str:
    _arity("uniqueString", args, path, 1)
    digest = hashlib.sha256("-".join(_strings("uniqueString", args, path)).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    return "".join(_BASE32[(number >> (5 * shift)) & 31] for shift in range(13))


def _guid(scope: Scope, path: str, args: list) -> str:
    _arity("guid", args, path, 1)
    return str(uuid.uuid5(_GUID_NAMESPACE, "-".join(_strings("guid", args, path))))


def _to_lower(scope: Scope, path: str, args: list) -> str:
    _arity("toLower", args, path, 1, 1)
    return _strings("toLower", args, path)[0].lower()


def _to_upper(scope: Scope, path: str, args: list) -> str:
    _arity("toUpper", args, path, 1, 1)
    return _strings("toUpper", args, path)[0].upper()


def _string(scope: Scope, path: str, args: list) -> str:
    _arity("string", args, path, 1, 1)
    value = args[0]
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return _as_text(value)


Function = Callable[[Scope, str, list], Any]
FUNCTIONS: dict[str, Function] = {
    "parameters": _parameters, "variables": _variables, "concat": _concat, "format": _format,
    "resourceid": _resource_id, "resourcegroup": _resource_group, "subscription": _subscription,
    "uniquestring": _unique_string, "guid": _guid, "tolower": _to_lower, "toupper": _to_upper,
    "string": _string,
}
SERVED = ("parameters", "variables", "concat", "format", "resourceId", "resourceGroup", "subscription",
          "uniqueString", "guid", "toLower", "toUpper", "string")


# -- whole templates ----------------------------------------------------------------------------

TEMPLATE_KEYS = {"$schema", "contentversion", "parameters", "variables", "resources", "outputs", "metadata",
                 "apiprofile"}
RESOURCE_KEYS = {"type", "apiversion", "name", "location", "dependson", "tags", "identity", "properties", "sku",
                 "kind", "plan", "zones", "comments", "metadata", "condition"}
# What the resource's own PUT receives: everything but the template's bookkeeping.
NOT_SENT = {"type", "apiversion", "name", "dependson", "comments", "metadata", "condition"}
PARAMETER_TYPES = {"string": "String", "securestring": "SecureString", "int": "Int", "bool": "Bool",
                   "object": "Object", "secureobject": "SecureObject", "array": "Array"}


@dataclass
class PlannedResource:
    """One template resource, evaluated: what to PUT where, and what must succeed first."""

    index: int
    id: str
    type: str
    name: str
    api_version: str
    body: dict
    depends_on: list[int]


@dataclass
class Expansion:
    resources: list[PlannedResource]
    parameters: dict[str, dict]  # {name: {"type": "String", "value": ...}}, as a deployment shows them
    outputs: dict[str, dict]


def expand(template: Any, given: Any, *, subscription: dict, resource_group: dict, deployment: str) -> Expansion:
    """Evaluate a deployment template with the given parameters ({name: {"value": v}}).

    Returns the resources in template order with their dependencies resolved; raises TemplateError
    (path, reason) for anything the emulator does not serve or ARM would refuse."""
    if not isinstance(template, dict):
        raise TemplateError("template", "The template must be a JSON object.")
    for key in template:
        if key.lower() not in TEMPLATE_KEYS:
            raise TemplateError(key, f"The template property '{key}' is not supported by the emulator (served: "
                                     "parameters, variables, resources, outputs).")
    values, shown = _parameter_values(template.get("parameters") or {}, given or {}, subscription,
                                      resource_group, deployment)
    scope = Scope(values, dict(template.get("variables") or {}), subscription, resource_group, deployment)
    raw = template.get("resources")
    if not isinstance(raw, list):
        raise TemplateError("resources", "The template 'resources' must be an array (languageVersion 2.0 "
                                         "templates are not served by the emulator).")
    planned: list[PlannedResource] = []
    pending_depends: list[list[str]] = []
    for index, resource in enumerate(raw):
        path = f"resources[{index}]"
        if not isinstance(resource, dict):
            raise TemplateError(path, "A template resource must be a JSON object.")
        for key in resource:
            if key.lower() not in RESOURCE_KEYS:
                raise TemplateError(f"{path}.{key}", f"The template resource property '{key}' is not supported "
                                                     "by the emulator.")
        if "condition" in resource and not evaluate(resource["condition"], scope, f"{path}.condition"):
            continue
        evaluated = {key: evaluate(value, scope, f"{path}.{key}") for key, value in resource.items()}
        for key in ("type", "apiVersion", "name"):
            if not isinstance(_get(evaluated, key), str) or not _get(evaluated, key):
                raise TemplateError(f"{path}.{key}", f"The template resource property '{key}' is required and "
                                                     "must be a string.")
        kind, name = _get(evaluated, "type"), _get(evaluated, "name")
        namespace, *types = kind.split("/")
        names = name.split("/")
        if not types or len(names) != len(types):
            raise TemplateError(f"{path}.name", f"The template resource '{name}' for type '{kind}' has an incorrect "
                                                "segment length. A nested resource type must have identical number "
                                                "of segments as its resource name.")
        segments = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        resource_id = f"{resource_group['id']}/providers/{namespace}/{segments}"
        body = {key: value for key, value in evaluated.items() if key.lower() not in NOT_SENT}
        planned.append(PlannedResource(index, resource_id, kind, name, _get(evaluated, "apiVersion"), body, []))
        depends = _get(evaluated, "dependsOn") or []
        if not isinstance(depends, list) or not all(isinstance(item, str) for item in depends):
            raise TemplateError(f"{path}.dependsOn", "dependsOn must be an array of resource names or ids.")
        pending_depends.append(depends)
    for resource, depends in zip(planned, pending_depends, strict=True):
        for position, reference in enumerate(depends):
            target = _find_resource(planned, reference)
            if target is None:
                raise TemplateError(f"resources[{resource.index}].dependsOn[{position}]",
                                    f"The resource '{reference}' is not defined in the template.")
            resource.depends_on.append(planned.index(target))
    _check_cycles(planned)
    outputs = {}
    for key, spec in (template.get("outputs") or {}).items():
        path = f"outputs.{key}"
        if not isinstance(spec, dict) or "value" not in spec:
            raise TemplateError(path, "An output must have a 'type' and a 'value'.")
        kind = PARAMETER_TYPES.get(str(spec.get("type", "")).lower(), str(spec.get("type", "")))
        outputs[key] = {"type": kind, "value": evaluate(spec["value"], scope, f"{path}.value")}
    return Expansion(planned, shown, outputs)


def _get(mapping: dict, name: str) -> Any:
    key = _find_key(mapping, name)
    return mapping[key] if key is not None else None


def _find_resource(planned: list[PlannedResource], reference: str) -> PlannedResource | None:
    wanted = reference.lower()
    for resource in planned:
        if wanted in (resource.id.lower(), resource.name.lower(), f"{resource.type}/{resource.name}".lower()):
            return resource
    return None


def _check_cycles(planned: list[PlannedResource]) -> None:
    state: dict[int, str] = {}

    def visit(position: int) -> None:
        if state.get(position) == "done":
            return
        if state.get(position) == "visiting":
            resource = planned[position]
            raise TemplateError(f"resources[{resource.index}].dependsOn",
                                f"Circular dependency detected on resource: '{resource.id}'.")
        state[position] = "visiting"
        for other in planned[position].depends_on:
            visit(other)
        state[position] = "done"

    for position in range(len(planned)):
        visit(position)


def _parameter_values(declared: dict, given: dict, subscription: dict, resource_group: dict,
                      deployment: str) -> tuple[dict, dict]:
    if not isinstance(given, dict):
        raise TemplateError("parameters", "The deployment parameters must be a JSON object.")
    unknown = [name for name in given if _find_key(declared, name) is None]
    if unknown:
        raise TemplateError("parameters", f"The template parameters '{', '.join(unknown)}' in the parameters file "
                                          "are not valid; they are not present in the original template and can "
                                          "therefore not be provided at deployment time. The only supported "
                                          f"parameters for this template are '{', '.join(declared)}'.")
    values: dict[str, Any] = {}
    defaults: list[str] = []
    for name, spec in declared.items():
        path = f"parameters.{name}"
        if not isinstance(spec, dict) or str(spec.get("type", "")).lower() not in PARAMETER_TYPES:
            raise TemplateError(f"{path}.type", f"The template parameter '{name}' has no valid type (string, int, "
                                                "bool, object, array, securestring, secureobject).")
        key = _find_key(given, name)
        if key is not None:
            supplied = given[key]
            if not isinstance(supplied, dict) or "value" not in supplied:
                raise TemplateError(path, f"The value for the template parameter '{name}' must be given as "
                                          "{\"value\": ...} (Key Vault references are not served by the emulator).")
            values[name] = supplied["value"]
        elif "defaultValue" in spec:
            defaults.append(name)
        else:
            raise TemplateError(path, f"The value for the template parameter '{name}' is not provided. Please see "
                                      "https://aka.ms/arm-create-parameter-file for usage details.")
    scope = Scope(values, {}, subscription, resource_group, deployment)
    for name in defaults:
        values[name] = evaluate(declared[name]["defaultValue"], scope, f"parameters.{name}.defaultValue")
    shown = {}
    for name, spec in declared.items():
        kind = PARAMETER_TYPES[str(spec["type"]).lower()]
        _check_parameter(name, kind, values[name], spec)
        shown[name] = {"type": kind} if kind.startswith("Secure") else {"type": kind, "value": values[name]}
    return values, shown


_PYTHON_TYPES = {"String": str, "SecureString": str, "Int": int, "Bool": bool, "Object": dict,
                 "SecureObject": dict, "Array": list}


def _check_parameter(name: str, kind: str, value: Any, spec: dict) -> None:
    expected = _PYTHON_TYPES[kind]
    fits = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not fits:
        raise TemplateError(f"parameters.{name}", f"Template parameter JToken type is not valid. Expected "
                                                  f"'{kind}'. Actual '{_type_name(value)}'.")
    allowed = spec.get("allowedValues")
    if isinstance(allowed, list) and value not in allowed:
        raise TemplateError(f"parameters.{name}", f"The provided value '{value}' for the template parameter "
                                                  f"'{name}' is not valid. The parameter value is not part of the "
                                                  f"allowed value(s): '{','.join(str(v) for v in allowed)}'.")


# -- JSONC ------------------------------------------------------------------------------------

def loads_jsonc(text: str) -> Any:
    """JSON as ARM's reader takes it: comments (// and /* */), trailing commas and unquoted
    property names. The Azure CLI relies on it: it splices the template file's own text, comments
    included, into the deployment body as `, template: <text>}}`.
    Raises ValueError when the text is not JSON even then."""
    out: list[str] = []
    comma_at = -1  # position in `out` of a comma that may turn out to be trailing
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if text.startswith("//", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
            continue
        if text.startswith("/*", index):
            close = text.find("*/", index + 2)
            if close < 0:
                raise ValueError("unterminated comment")
            index = close + 2
            continue
        if char.isspace():
            out.append(char)
            index += 1
            continue
        if char in "}]" and comma_at >= 0:
            out[comma_at] = ""
        comma_at = -1
        if char == '"':
            end = index + 1
            while end < length and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[index:end + 1])
            index = end + 1
            continue
        if char == ",":
            comma_at = len(out)
        bare = _BARE_NAME.match(text, index)
        if bare:
            out.append(f'"{bare.group(1)}"')
            index = bare.end(1)
            continue
        out.append(char)
        index += 1
    return json.loads("".join(out))


_BARE_NAME = re.compile(r"([A-Za-z_$][\w$]*)(?=\s*:)")
