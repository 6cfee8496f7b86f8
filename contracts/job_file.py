"""A job file: the JSON a server writes into a job folder and the worker process reads back (`job.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from contracts.errors import ContractError, validation_problems


class JobFile(BaseModel):
    """A frozen model written and read as one JSON file; `read` raises `file_error` naming the file and each
    invalid field."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file_error: ClassVar[type[ContractError]] = ContractError

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> JobFile:
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise cls.file_error(f"{path}: cannot read the job file ({exc})") from None
        except ValidationError as exc:
            raise cls.file_error(f"{path}: {validation_problems(exc)}") from None
