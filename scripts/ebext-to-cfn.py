#!/usr/bin/env python3
"""Builds a CloudFormation template from the `Resources` of .ebextensions/*.config, so that
cfn-lint can check them (it rejects raw .config files).

Elastic Beanstalk merges those Resources into the environment's own stack, so they may use
things a stand-alone template lacks. They are stubbed as template Parameters:
  - `Fn::GetOptionSetting` (custom options such as InstanceRoleName): a String parameter named
    after the option, its default the value set under aws:elasticbeanstalk:customoption, else
    the DefaultValue;
  - references to EB's own resources (`Ref`/`Fn::GetAtt` of AWSEB*): a String parameter each;
    `DependsOn` on them is dropped.
Environment properties bound with the backtick form (`{"Ref": "SettingsTable"}`) become
Outputs, so cfn-lint also checks that they name resources that exist.

Usage: ebext-to-cfn.py [REPO_ROOT] > template.json
"""

import json
import re
import sys
from pathlib import Path

import yaml

ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"
CUSTOM_NAMESPACE = "aws:elasticbeanstalk:customoption"


def fail(msg):
    print(f"ebext-to-cfn: {msg}", file=sys.stderr)
    sys.exit(1)


def load_configs(root):
    files = sorted((root / ".ebextensions").glob("*.config"))
    if not files:
        fail(f"no .ebextensions/*.config under {root}")
    out = []
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            # Short-form tags (!Ref) land here: .ebextensions needs the long form.
            fail(f"{path}: not plain YAML ({e})")
        if not isinstance(doc, dict):
            fail(f"{path}: expected a mapping at the top level")
        out.append((path, doc))
    return out


def option_settings(doc):
    """option_settings in either documented shape: a mapping of namespace -> {name: value},
    or a list of {namespace, option_name, value}."""
    opts = doc.get("option_settings") or {}
    pairs = []
    if isinstance(opts, dict):
        for ns, values in opts.items():
            for name, value in (values or {}).items():
                pairs.append((ns, name, value))
    elif isinstance(opts, list):
        for item in opts:
            pairs.append((item.get("namespace"), item.get("option_name"), item.get("value")))
    return pairs


def param_name(*parts):
    return re.sub(r"[^A-Za-z0-9]", "", "".join(parts))


class Stubber:
    def __init__(self, custom):
        self.custom = custom
        self.parameters = {}

    def add(self, name, default=None, description=""):
        p = {"Type": "String", "Description": description or "stub for the EB stack"}
        if default is not None:
            p["Default"] = str(default)
        self.parameters.setdefault(name, p)
        return {"Ref": name}

    def walk(self, node):
        if isinstance(node, list):
            return [self.walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Fn::GetOptionSetting":
                option = value.get("OptionName")
                if not option:
                    fail("Fn::GetOptionSetting without OptionName")
                default = self.custom.get(option, value.get("DefaultValue"))
                return self.add(param_name(option), default,
                                f"Elastic Beanstalk option {option}")
            if key == "Ref" and isinstance(value, str) and value.startswith("AWSEB"):
                return self.add(value, None, f"Elastic Beanstalk resource {value}")
            if key == "Fn::GetAtt" and isinstance(value, list) and str(value[0]).startswith("AWSEB"):
                return self.add(param_name(*map(str, value)), None,
                                f"Elastic Beanstalk attribute {'.'.join(map(str, value))}")
        out = {}
        for k, v in node.items():
            if k == "DependsOn":
                deps = [v] if isinstance(v, str) else list(v)
                deps = [d for d in deps if not d.startswith("AWSEB")]
                if deps:
                    out[k] = deps
                continue
            out[k] = self.walk(v)
        return out


def backtick_intrinsic(value):
    """`{"Ref": "X"}` (the whole value in backticks) -> {"Ref": "X"}; anything else -> None."""
    if isinstance(value, str) and len(value) > 2 and value.startswith("`") and value.endswith("`"):
        try:
            parsed = json.loads(value[1:-1])
        except json.JSONDecodeError:
            fail(f"environment value {value!r} is not `JSON` in backticks")
        if isinstance(parsed, dict):
            return parsed
    return None


def build(root):
    configs = load_configs(root)
    custom, env = {}, {}
    for _, doc in configs:
        for ns, name, value in option_settings(doc):
            if ns == CUSTOM_NAMESPACE:
                custom[name] = value
            elif ns == ENV_NAMESPACE:
                env[name] = value

    stub = Stubber(custom)
    resources, outputs = {}, {}
    for path, doc in configs:
        for name, resource in (doc.get("Resources") or {}).items():
            if name in resources:
                fail(f"{path}: resource {name} is defined in two files")
            resources[name] = stub.walk(resource)
        for name, output in (doc.get("Outputs") or {}).items():
            outputs[name] = stub.walk(output)
    if not resources:
        fail("no Resources in .ebextensions/*.config")

    for var, value in env.items():
        intrinsic = backtick_intrinsic(value)
        if intrinsic is not None:
            outputs[param_name("Env", var.title())] = {
                "Description": f"environment property {var}",
                "Value": stub.walk(intrinsic),
            }

    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Resources of .ebextensions/*.config, extracted for cfn-lint",
    }
    if stub.parameters:
        template["Parameters"] = stub.parameters
    template["Resources"] = resources
    if outputs:
        template["Outputs"] = outputs
    return template


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    json.dump(build(root), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
