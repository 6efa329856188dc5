"""One environment as a deployable unit: the Stage that the sandbox and the toolchain both use."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from pipeline.config import CONTEXT_KEY, EnvironmentConfig, ToolchainConfig
from stacks.data_stack import DataStack
from stacks.training_stack import TrainingStack


class NovaSftStage(cdk.Stage):
    """The DataStack and the TrainingStack of one environment, in its account and region.

    The construct id should be the environment's name (`cdk deploy 'sandbox/*'`). An environment
    without an account (the sandbox) deploys into the account of the deploying credentials.
    Stack names are `nova-sft-<env>-data` and `nova-sft-<env>-training`. `toolchain` is the
    toolchain that deploys this stage (default None: deployed by hand); its smoke step may then
    describe the stage's pipeline, and its event bus receives the stage's approval events.
    Attributes: `config`, `data` (DataStack), `training` (TrainingStack).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        toolchain: ToolchainConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=config.region),
            **kwargs,
        )
        self.config = config
        prefix = f"{CONTEXT_KEY}-{config.name}"
        self.data = DataStack(self, "Data", config=config, stack_name=f"{prefix}-data")
        self.training = TrainingStack(
            self,
            "Training",
            config=config,
            data=self.data.exports,
            toolchain=toolchain,
            stack_name=f"{prefix}-training",
        )
        # The training stack imports the data stack's exports by name.
        self.training.add_stack_dependency(self.data)
