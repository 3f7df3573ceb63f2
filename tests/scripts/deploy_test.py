"""Checks the container example in scripts/deploy/ without a Docker engine.

No image is built and no container runs here. What is checked instead:
the files agree with each other and with the server (paths the
Dockerfile copies exist, one port everywhere, environment names the
server reads, every secret file mounted, a stop grace longer than the
server's, a non-root user, the health probe being authcode-cli's health
command), runtime-packages.sh names installed Debian packages for the
built binaries, and the commands the compose services run (check-config,
migrate, serve, and the health probe against it, then SIGTERM) work with
the secrets make-secrets.sh writes, the example config, and a database in
the test cluster standing in for the `db` service.

    /usr/bin/python3 tests/scripts/deploy_test.py --authcode BIN --cli BIN \\
        --pg-dir DIR --source-dir SRC [unittest arguments]
"""

import argparse
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest
import urllib.parse

import yaml

ARGS = None  # the parsed command line, set in main()


def deploy_path(*parts):
    return os.path.join(ARGS.source_dir, "scripts", "deploy", *parts)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) for each instruction, continuation lines
    joined and comments dropped."""
    instructions = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        current = ""
    return instructions


def exec_form(arguments):
    """The JSON array of an exec-form ENTRYPOINT, CMD or HEALTHCHECK CMD."""
    return json.loads(arguments[arguments.index("["):])


def seconds(duration):
    """A compose or authcode duration such as "20s", "1m30s" or "500ms"."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9.]+)(ms|s|m|h)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError("not a duration: %r" % duration)
    return sum(float(n) * units[u] for n, u in parts)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DeployFiles(unittest.TestCase):
    """The files of scripts/deploy/ agree with each other and the server."""

    @classmethod
    def setUpClass(cls):
        cls.compose = yaml.safe_load(read(deploy_path("compose.yaml")))
        cls.services = cls.compose["services"]
        cls.dockerfile = dockerfile_instructions(
            read(deploy_path("Dockerfile")))
        cls.config = tomllib.loads(read(deploy_path("authcode.toml")))

    def instruction(self, name, stage=-1):
        """The arguments of the last `name` instruction in `stage` (by
        index among the FROM stages; the last one by default)."""
        stages = [[]]
        for word, rest in self.dockerfile:
            if word == "FROM" and stages[-1]:
                stages.append([])
            stages[-1].append((word, rest))
        found = [rest for word, rest in stages[stage] if word == name]
        self.assertTrue(found, "no %s in stage %d" % (name, stage))
        return found[-1]

    def entrypoint(self):
        return exec_form(self.instruction("ENTRYPOINT"))

    def test_compose_runs_postgres_15_a_migrate_job_and_the_server(self):
        self.assertEqual(set(self.services), {"db", "migrate", "authcode"})
        self.assertTrue(self.services["db"]["image"].startswith("postgres:15"))
        self.assertEqual(self.services["migrate"]["command"], ["migrate"])
        self.assertEqual(self.services["authcode"]["command"], ["serve"])
        depends = self.services["authcode"]["depends_on"]
        self.assertEqual(depends["migrate"]["condition"],
                         "service_completed_successfully")
        self.assertEqual(depends["db"]["condition"], "service_healthy")

    def test_the_build_is_this_dockerfile_from_the_repository_root(self):
        for name in ("migrate", "authcode"):
            build = self.services[name]["build"]
            context = os.path.normpath(deploy_path(build["context"]))
            self.assertEqual(context, os.path.normpath(ARGS.source_dir))
            self.assertTrue(
                os.path.isfile(os.path.join(context, build["dockerfile"])))

    def test_the_build_stage_is_debian_12_with_install_deps(self):
        self.assertEqual(self.instruction("FROM", 0), "debian:12 AS build")
        runs = [rest for word, rest in self.dockerfile if word == "RUN"]
        self.assertIn("scripts/install-deps.sh", runs[0])
        self.assertTrue(self.instruction("FROM").startswith("debian:12"))

    def test_every_file_the_dockerfile_copies_exists(self):
        for word, rest in self.dockerfile:
            if word != "COPY" or rest.startswith("--from="):
                continue
            *sources, _ = shlex.split(rest)
            for source in sources:
                if source == ".":
                    continue
                self.assertTrue(
                    os.path.exists(os.path.join(ARGS.source_dir, source)),
                    "COPY %s: not in the repository" % source)
        for script in ("install-deps.sh", "deploy/runtime-packages.sh",
                       "deploy/make-secrets.sh"):
            self.assertTrue(os.access(
                os.path.join(ARGS.source_dir, "scripts", script), os.X_OK),
                script + " is not executable")

    def test_the_image_runs_as_a_non_root_user(self):
        user = self.instruction("USER")
        self.assertNotIn(user.split(":")[0], ("", "0", "root"))

    def test_the_entrypoint_is_the_server_with_the_mounted_config(self):
        entrypoint = self.entrypoint()
        copied = " ".join(rest for word, rest in self.dockerfile
                          if word == "COPY")
        self.assertTrue(entrypoint[0].endswith("/authcode"))
        self.assertIn("/out/authcode ", copied)
        self.assertEqual(entrypoint[1], "--config")
        mounts = {volume.split(":")[1]: volume.split(":")[0]
                  for volume in self.services["authcode"]["volumes"]}
        self.assertEqual(mounts[entrypoint[2]], "./authcode.toml")
        self.assertTrue(os.path.isfile(deploy_path("authcode.toml")))

    def test_one_port_everywhere(self):
        listen_port = self.config["server"]["listen"].rsplit(":", 1)[1]
        self.assertEqual(self.instruction("EXPOSE"), listen_port)
        for mapping in self.services["authcode"]["ports"]:
            self.assertEqual(mapping.rsplit(":", 1)[1], listen_port)
            self.assertTrue(mapping.startswith("127.0.0.1:"),
                            "the example is plaintext: loopback only")
        for probe in (self.services["authcode"]["healthcheck"]["test"][1:],
                      exec_form(self.instruction("HEALTHCHECK"))):
            target = probe[probe.index("--target") + 1]
            self.assertEqual(target, "127.0.0.1:" + listen_port)

    def test_the_health_probe_is_the_clis_health_command(self):
        compose_probe = self.services["authcode"]["healthcheck"]["test"]
        self.assertEqual(compose_probe[0], "CMD")
        image_probe = exec_form(self.instruction("HEALTHCHECK"))
        self.assertEqual(compose_probe[1:], image_probe)
        self.assertTrue(image_probe[0].endswith("/authcode-cli"))
        self.assertEqual(image_probe[-1], "health")
        copied = " ".join(rest for word, rest in self.dockerfile
                          if word == "COPY")
        self.assertIn("/out/authcode-cli", copied)

    def test_environment_names_are_ones_the_server_reads(self):
        documented = set(re.findall(r"AUTHCODE_[A-Z_]+",
                                    read(os.path.join(ARGS.source_dir,
                                                      "config.example.toml"))))
        literals = set(re.findall(
            r'"(AUTHCODE_[A-Z_]+)"',
            read(os.path.join(ARGS.source_dir, "server", "config.cc"))))
        for name in ("migrate", "authcode"):
            for variable in self.services[name]["environment"]:
                self.assertIn(variable, documented)
                self.assertTrue(variable in literals or
                                variable.removesuffix("_FILE") in literals,
                                variable + " is not read by server/config.cc")

    def test_every_secret_file_is_mounted_and_made(self):
        declared = self.compose["secrets"]
        for name in ("migrate", "authcode"):
            mounted = set(self.services[name]["secrets"])
            self.assertTrue(mounted <= set(declared))
            named = [value for value in
                     self.services[name]["environment"].values()
                     if value.startswith("/run/secrets/")]
            named += re.findall(r'"/run/secrets/([^"]+)"',
                                read(deploy_path("authcode.toml")))
            for path in named:
                self.assertIn(os.path.basename(path), mounted)
        self.assertIn("postgres_password", self.services["db"]["secrets"])

        with tempfile.TemporaryDirectory() as scratch:
            folder = os.path.join(scratch, "secrets")
            subprocess.run([deploy_path("make-secrets.sh"), folder],
                           check=True, capture_output=True)
            made = set(os.listdir(folder))
            self.assertEqual(os.stat(folder).st_mode & 0o777, 0o700)
        files = {name: os.path.basename(secret["file"])
                 for name, secret in declared.items()}
        self.assertEqual(set(files), set(files.values()))
        self.assertEqual(set(files) - made, {"smtp_password"},
                         "make-secrets.sh writes all but the SMTP password")

    def test_the_stop_grace_outlasts_the_servers_shutdown_grace(self):
        server = self.services["authcode"]
        self.assertEqual(server["stop_signal"], "SIGTERM")
        self.assertEqual(self.instruction("STOPSIGNAL"), "SIGTERM")
        shutdown = seconds(self.config["server"].get("shutdown_grace", "10s"))
        self.assertGreater(seconds(server["stop_grace_period"]), shutdown)


class DeployCommands(unittest.TestCase):
    """The compose services' commands, run here with the built binaries."""

    @classmethod
    def setUpClass(cls):
        cls.compose = yaml.safe_load(read(deploy_path("compose.yaml")))
        cls.dockerfile = dockerfile_instructions(
            read(deploy_path("Dockerfile")))
        with open(os.path.join(ARGS.pg_dir, "url"), encoding="utf-8") as f:
            cluster = f.read().strip()
        cls.database = "authcode_deploy_%d_%s" % (os.getpid(),
                                                  secrets.token_hex(4))
        cls.cluster = cluster
        cls.psql("CREATE DATABASE %s" % cls.database)
        cls.scratch = tempfile.TemporaryDirectory(prefix="authcode-deploy.")
        root = cls.scratch.name

        # /run/secrets as make-secrets.sh writes it, with the test
        # cluster's database in place of the `db` service's.
        cls.secrets = os.path.join(root, "secrets")
        subprocess.run([deploy_path("make-secrets.sh"), cls.secrets],
                       check=True, capture_output=True)
        parts = urllib.parse.urlsplit(cluster)
        with open(os.path.join(cls.secrets, "database_url"), "w") as f:
            f.write(urllib.parse.urlunsplit(
                parts._replace(path="/" + cls.database)) + "\n")
        with open(os.path.join(cls.secrets, "smtp_password"), "w") as f:
            f.write("smtp-password-" + secrets.token_hex(8) + "\n")

        cls.config = os.path.join(root, "authcode.toml")
        with open(cls.config, "w", encoding="utf-8") as f:
            f.write(read(deploy_path("authcode.toml")).replace(
                "/run/secrets/", cls.secrets + "/"))

    @classmethod
    def tearDownClass(cls):
        cls.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.database)
        cls.scratch.cleanup()

    @classmethod
    def psql(cls, statement):
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", cls.cluster,
                        "-c", statement], check=True,
                       stdout=subprocess.DEVNULL)

    def environment(self, service, **extra):
        env = {"PATH": "/usr/bin:/bin"}
        for name, value in self.compose["services"][service][
                "environment"].items():
            env[name] = value.replace("/run/secrets/", self.secrets + "/")
        env.update(extra)
        return env

    def command(self, service):
        """The container's command line for `service`, with this build's
        binary and the scratch config in place of the image's."""
        entrypoint = exec_form(
            [rest for word, rest in self.dockerfile
             if word == "ENTRYPOINT"][-1])
        return ([ARGS.authcode, "--config", self.config] + entrypoint[3:] +
                self.compose["services"][service]["command"])

    def test_runtime_packages_are_installed_debian_packages(self):
        result = subprocess.run(
            [deploy_path("runtime-packages.sh"), ARGS.authcode, ARGS.cli],
            capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        packages = result.stdout.split()
        for expected in ("libpqxx-6.4", "libgrpc++1.51", "libc6"):
            self.assertIn(expected, packages)
        installed = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\n"] + packages,
            capture_output=True, text=True, check=False)
        self.assertEqual(installed.returncode, 0, installed.stderr)

    def test_check_migrate_serve_probe_and_stop(self):
        check = subprocess.run(
            [ARGS.authcode, "--config", self.config, "check-config"],
            env=self.environment("authcode"), capture_output=True, text=True,
            timeout=60, check=False)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn("ok    providers.relay: smtp", check.stdout)

        migrate = subprocess.run(
            self.command("migrate"), env=self.environment("migrate"),
            capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(migrate.returncode, 0, migrate.stderr)
        self.assertIn("schema up to date", migrate.stdout)

        port = free_port()
        server = subprocess.Popen(
            self.command("authcode"),
            env=self.environment("authcode",
                                 AUTHCODE_LISTEN="127.0.0.1:%d" % port),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            probe = self.compose["services"]["authcode"]["healthcheck"]
            command = [ARGS.cli] + [
                "127.0.0.1:%d" % port if arg.startswith("127.0.0.1:") else arg
                for arg in probe["test"][2:]]
            deadline = time.monotonic() + seconds(probe["start_period"])
            while True:
                health = subprocess.run(command, capture_output=True,
                                        text=True, timeout=10, check=False)
                if health.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(health.returncode, 0, health.stderr)
            self.assertEqual(health.stdout, "health status=serving\n")

            server.send_signal(signal.SIGTERM)
            grace = seconds(
                self.compose["services"]["authcode"]["stop_grace_period"])
            _, err = server.communicate(timeout=grace)
            self.assertEqual(server.returncode, 0, err)
            self.assertIn('"server.stopping"', err)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authcode", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--pg-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    program = unittest.main(argv=[sys.argv[0]] + rest, exit=False,
                            verbosity=2)
    sys.exit(0 if program.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
