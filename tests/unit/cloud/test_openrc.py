"""openrc parsing (never executed) and conversion to clouds.yaml / secure.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackyard.cloud.connect import CredentialSource, resolve
from stackyard.cloud.openrc import (
    OpenrcValues,
    credential_problems,
    openrc_to_clouds_yaml,
    parse_openrc,
)
from stackyard.errors import ValidationError

# What Horizon's "OpenStack RC File" download looks like (identity v3, password typed at a prompt).
HORIZON_PASSWORD_RC = """\
#!/usr/bin/env bash
# To use an OpenStack cloud you need to authenticate against the Identity
# service named keystone, which returns a **Token** and **Service Catalog**.
export OS_AUTH_URL=https://keystone.example.org:5000/v3
# With the addition of Keystone we have standardized on the term **project**
export OS_PROJECT_ID=0123456789abcdef0123456789abcdef
export OS_PROJECT_NAME="course-cs101"
export OS_USER_DOMAIN_NAME="Default"
if [ -z "$OS_USER_DOMAIN_NAME" ]; then unset OS_USER_DOMAIN_NAME; fi
export OS_PROJECT_DOMAIN_ID="default"
if [ -z "$OS_PROJECT_DOMAIN_ID" ]; then unset OS_PROJECT_DOMAIN_ID; fi
# unset v2.0 items in case set
unset OS_TENANT_ID
unset OS_TENANT_NAME
# In addition to the owning entity (tenant), OpenStack stores the entity
# performing the action as the **user**.
export OS_USERNAME="alice"
# With Keystone you pass the keystone password.
echo "Please enter your OpenStack Password for project $OS_PROJECT_NAME as user $OS_USERNAME: "
read -sr OS_PASSWORD_INPUT
export OS_PASSWORD=$OS_PASSWORD_INPUT
# If your configuration has multiple regions, we set that information here.
# OS_REGION_NAME is optional and only valid in certain environments.
export OS_REGION_NAME="RegionOne"
# Don't leave a blank variable, unset it if it was empty
if [ -z "$OS_REGION_NAME" ]; then unset OS_REGION_NAME; fi
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
"""

HORIZON_APP_CRED_RC = """\
#!/usr/bin/env bash

export OS_AUTH_TYPE=v3applicationcredential
export OS_AUTH_URL=https://keystone.example.org:5000/v3
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME="RegionOne"
export OS_INTERFACE=public
export OS_APPLICATION_CREDENTIAL_ID=a1b2c3d4e5f6
export OS_APPLICATION_CREDENTIAL_SECRET='s3cr3t-$ecret with "quotes"'
"""


def test_horizon_openrc_with_a_password_prompt() -> None:
    values = parse_openrc(HORIZON_PASSWORD_RC)
    assert dict(values) == {
        "OS_AUTH_URL": "https://keystone.example.org:5000/v3",
        "OS_PROJECT_ID": "0123456789abcdef0123456789abcdef",
        "OS_PROJECT_NAME": "course-cs101",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_ID": "default",
        "OS_USERNAME": "alice",
        "OS_REGION_NAME": "RegionOne",
        "OS_INTERFACE": "public",
        "OS_IDENTITY_API_VERSION": "3",
    }
    assert "OS_PASSWORD" not in values
    assert values.prompted == {"OS_PASSWORD"}
    assert values.ignored == []


def test_the_prompted_password_is_reported_not_invented() -> None:
    values = parse_openrc(HORIZON_PASSWORD_RC)
    problems = credential_problems(values)
    assert len(problems) == 1
    assert "OS_PASSWORD" in problems[0]
    assert "prompt" in problems[0]
    document = yaml.safe_load(openrc_to_clouds_yaml(values, "cs101"))
    assert "password" not in document["clouds"]["cs101"]["auth"]


def test_horizon_openrc_converts_to_a_clouds_yaml_entry() -> None:
    document = yaml.safe_load(openrc_to_clouds_yaml(parse_openrc(HORIZON_PASSWORD_RC), "cs101"))
    assert document == {
        "clouds": {
            "cs101": {
                "auth_type": "password",
                "auth": {
                    "auth_url": "https://keystone.example.org:5000/v3",
                    "username": "alice",
                    "project_name": "course-cs101",
                    "project_id": "0123456789abcdef0123456789abcdef",
                    "user_domain_name": "Default",
                    "project_domain_id": "default",
                },
                "region_name": "RegionOne",
                "interface": "public",
                "identity_api_version": 3,
            }
        }
    }


def test_application_credential_openrc() -> None:
    values = parse_openrc(HORIZON_APP_CRED_RC)
    assert values["OS_APPLICATION_CREDENTIAL_SECRET"] == 's3cr3t-$ecret with "quotes"'
    assert credential_problems(values) == []
    entry = yaml.safe_load(openrc_to_clouds_yaml(values, "ci"))["clouds"]["ci"]
    assert entry["auth_type"] == "v3applicationcredential"
    assert entry["auth"] == {
        "auth_url": "https://keystone.example.org:5000/v3",
        "application_credential_id": "a1b2c3d4e5f6",
        "application_credential_secret": 's3cr3t-$ecret with "quotes"',
    }


def test_auth_type_is_inferred_for_application_credentials_and_tokens() -> None:
    app = {"OS_AUTH_URL": "https://k/v3", "OS_APPLICATION_CREDENTIAL_NAME": "n", "OS_USERNAME": "u"}
    token = {"OS_AUTH_URL": "https://k/v3", "OS_TOKEN": "t", "OS_PROJECT_ID": "p"}
    assert (
        yaml.safe_load(openrc_to_clouds_yaml(app, "a"))["clouds"]["a"]["auth_type"]
        == "v3applicationcredential"
    )
    assert yaml.safe_load(openrc_to_clouds_yaml(token, "t"))["clouds"]["t"]["auth_type"] == "token"
    assert credential_problems(app) == [
        "OS_APPLICATION_CREDENTIAL_SECRET is not set in the openrc "
        "(v3applicationcredential authentication needs it)"
    ]


def test_split_secrets_puts_only_secrets_in_secure_yaml() -> None:
    values = parse_openrc(HORIZON_APP_CRED_RC)
    clouds_text, secure_text = openrc_to_clouds_yaml(values, "ci", split_secrets=True)
    assert "s3cr3t" not in clouds_text
    clouds = yaml.safe_load(clouds_text)["clouds"]["ci"]
    assert "application_credential_secret" not in clouds["auth"]
    assert clouds["auth"]["application_credential_id"] == "a1b2c3d4e5f6"
    assert yaml.safe_load(secure_text) == {
        "clouds": {"ci": {"auth": {"application_credential_secret": 's3cr3t-$ecret with "quotes"'}}}
    }


def test_split_files_load_together_in_openstacksdk(tmp_path: Path) -> None:
    rc = HORIZON_PASSWORD_RC.replace("read -sr OS_PASSWORD_INPUT\n", "OS_PASSWORD_INPUT='pw from file'\n")
    clouds_text, secure_text = openrc_to_clouds_yaml(parse_openrc(rc), "cs101", split_secrets=True)
    (tmp_path / "clouds.yaml").write_text(clouds_text)
    (tmp_path / "secure.yaml").write_text(secure_text)
    resolved = resolve(
        cloud="cs101",
        environ={},
        config_files=[tmp_path / "clouds.yaml"],
        secure_files=[tmp_path / "secure.yaml"],
    )
    assert resolved.kind is CredentialSource.CLOUDS_YAML
    auth = resolved.cloud_region.config["auth"]
    assert auth["password"] == "pw from file"
    assert auth["username"] == "alice"
    assert resolved.region_name == "RegionOne"


def test_quoting_comments_and_expansion() -> None:
    values = parse_openrc(
        """
        export A='single $NOT_EXPANDED # not a comment'
        export B="double with \\"escaped\\" quotes and \\$dollar"
        C=plain  # a trailing comment
        export C
        export D="${C}-and-$C"
        export E=unquoted\\ space
        NOT_EXPORTED=secret
        export F=a"b c"'d'
        export G=
        export H="back\\slash\\n" I=two\\\\x
        """
    )
    assert dict(values) == {
        "A": "single $NOT_EXPANDED # not a comment",
        "B": 'double with "escaped" quotes and $dollar',
        "C": "plain",
        "D": "plain-and-plain",
        "E": "unquoted space",
        "F": "ab cd",
        "G": "",
        "H": "back\\slash\\n",  # inside double quotes a backslash before an ordinary character stays
        "I": "two\\x",
    }


def test_unset_removes_a_variable_and_unset_if_empty_only_when_empty() -> None:
    values = parse_openrc(
        """
        export OS_TENANT_NAME=old
        unset OS_TENANT_NAME OS_TENANT_ID
        export OS_REGION_NAME=
        if [ -z "$OS_REGION_NAME" ]; then unset OS_REGION_NAME; fi
        export OS_INTERFACE=internal
        if [ -z "$OS_INTERFACE" ]; then unset OS_INTERFACE; fi
        """
    )
    assert dict(values) == {"OS_INTERFACE": "internal"}


def test_values_from_outside_the_file_are_unresolved_not_guessed() -> None:
    values = parse_openrc(
        """
        export OS_CACERT=$HOME/ca.pem
        export OS_PASSWORD=$(pass show openstack)
        export OS_TOKEN=`cat token`
        export OS_USERNAME=${USER:-admin}
        export OS_AUTH_URL=https://k/v3
        """
    )
    assert dict(values) == {"OS_AUTH_URL": "https://k/v3"}
    assert values.unresolved == {"OS_CACERT", "OS_PASSWORD", "OS_TOKEN", "OS_USERNAME"}
    assert values.prompted == set()
    problems = credential_problems(values)
    assert any("OS_PASSWORD is built from something outside" in problem for problem in problems)


def test_read_with_a_prompt_option_and_line_continuations() -> None:
    values = parse_openrc(
        'read -r -p "Password: " PW\n'
        'export OS_PASSWORD="$PW"\n'
        "export OS_AUTH_URL=https://keystone\\\n"
        ".example.org/v3 \\\n"
        "  OS_INTERFACE=internal\n"
    )
    assert values.prompted == {"OS_PASSWORD"}
    assert dict(values) == {"OS_AUTH_URL": "https://keystone.example.org/v3", "OS_INTERFACE": "internal"}


def test_statements_it_does_not_understand_are_listed() -> None:
    values = parse_openrc("export A=1\nsource other.sh\nalias x=y\n")
    assert values.ignored == [2, 3]
    assert dict(values) == {"A": "1"}


def test_insecure_cacert_and_v2_names() -> None:
    values = {
        "OS_AUTH_URL": "https://k/v2.0",
        "OS_TENANT_NAME": "legacy",
        "OS_USERNAME": "u",
        "OS_PASSWORD": "p",
        "OS_ENDPOINT_TYPE": "publicURL",
        "OS_INSECURE": "true",
        "OS_CACERT": "/etc/ssl/ca.pem",
    }
    entry = yaml.safe_load(openrc_to_clouds_yaml(values, "legacy"))["clouds"]["legacy"]
    assert entry["auth"]["project_name"] == "legacy"
    assert entry["auth"]["password"] == "p"
    assert entry["interface"] == "public"
    assert entry["verify"] is False
    assert entry["cacert"] == "/etc/ssl/ca.pem"


def test_missing_auth_url_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        openrc_to_clouds_yaml({"OS_USERNAME": "u"}, "x")
    assert caught.value.field == "OS_AUTH_URL"


@pytest.mark.parametrize("name", ["", "has space", "-leading", "a/b"])
def test_cloud_names_are_checked(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        openrc_to_clouds_yaml({"OS_AUTH_URL": "https://k/v3"}, name)
    assert caught.value.field == "name"


def test_parse_openrc_returns_a_plain_mapping() -> None:
    values = parse_openrc("export X=1\n")
    assert isinstance(values, OpenrcValues)
    assert isinstance(values, dict)
    assert values == {"X": "1"}
