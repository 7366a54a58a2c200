"""The project's one container image, hashed and built from only the files the image uses."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

REPOSITORY = Path(__file__).resolve().parents[2]
DOCKERFILE = "container/Dockerfile"
# An allow-list: the build context, and so the asset hash, holds only what the image copies.
DOCKER_IGNORE = ".dockerignore"
# Docker's own matching (later lines win, `!` re-includes), as `docker build` reads the file.
IMAGE_IGNORE_MODE = IgnoreMode.DOCKER


def docker_ignore_patterns(directory: Path) -> list[str]:
    """The patterns of ``directory``'s .dockerignore, in order, without comments or blank lines."""
    path = directory / DOCKER_IGNORE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: without it the image would hash everything")
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def image_pull_statement(repository: ecr.IRepository) -> iam.PolicyStatement:
    """Pulling the project image from its repository (jobs and endpoints alike)."""
    return iam.PolicyStatement(
        sid="PullOurImage",
        actions=[
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage",
        ],
        resources=[repository.repository_arn],
    )


class ProjectImage(Construct):
    """The image of ``container/Dockerfile``, built from ``directory`` (the repository).

    CDK prepends the same .dockerignore lines itself; giving them explicitly keeps the asset's
    patterns and the ones ``docker_ignore_patterns`` returns (which the tests fingerprint) one.
    """

    def __init__(self, scope: Construct, id_: str, *, directory: Path = REPOSITORY) -> None:
        super().__init__(scope, id_)
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=str(directory),
            file=DOCKERFILE,
            exclude=docker_ignore_patterns(directory),
            ignore_mode=IMAGE_IGNORE_MODE,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.image_uri: str = self.asset.image_uri
        self.repository: ecr.IRepository = self.asset.repository
