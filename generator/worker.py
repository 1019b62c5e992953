"""One task, start to finish: idea -> write -> record -> gates -> kept or rejected. The content
retries live here (re-asking for a parseable idea, more room for a cut-off document, one
critique-and-rewrite); transport retries, cache and budget live in generator.calls."""

from __future__ import annotations

from generator.archetype import Archetype
from generator.backends.base import Completion, Request
from generator.calls import ModelCaller
from generator.gates import Gatekeeper, Review
from generator.plan import Task
from generator.prompts import (
    BriefStyle,
    Idea,
    IdeaParseError,
    idea_request,
    parse_idea,
    reask_request,
    revise_request,
    write_request,
)
from generator.records import Record, Usage, clean_document, make_record, make_reject
from generator.rundir import RunDir
from generator.scheduler import Outcome

_WHY = {
    "truncated": "the model hit the token limit (twice, with 1.5x more room the second time, "
    "unless the brief was compact)",
    "empty": "the model returned an empty document",
}


class Worker:
    """Takes one task through every step; writes its record or its reject to the run."""

    def __init__(
        self,
        writer: ModelCaller,
        gatekeeper: Gatekeeper,
        archetypes: dict[str, Archetype],
        rundir: RunDir,
        max_reasks: int,
        style: BriefStyle,
    ):
        self.writer = writer
        self.gatekeeper = gatekeeper
        self.archetypes = archetypes
        self.rundir = rundir
        self.max_reasks = max_reasks
        self.style = style

    async def process(self, task: Task) -> Outcome:
        archetype = self.archetypes[task.archetype_id]
        calls: list[Completion] = []
        idea = await self._idea(task, archetype, calls)
        if idea is None:
            return self._reject(
                task, "idea", "idea-unparseable", f"no usable idea after {self.max_reasks} re-asks"
            )
        request = write_request(task, archetype, idea, self.style)
        completion = await self._complete_document(request, calls)
        if isinstance(completion, str):
            return self._reject(task, "write", completion, _WHY[completion], calls[-1].text)
        record = self._record(task, idea, completion, request, calls, archetype)
        review = await self.gatekeeper.review(record, archetype, task.names)
        if review.fixable:
            # One critique-and-rewrite, then judged again from scratch.
            rewrite = revise_request(
                task, archetype, review.record, review.revision_advice, self.style
            )
            revised = await self._complete_document(rewrite, calls)
            if isinstance(revised, Completion):
                record = self._record(task, idea, revised, rewrite, calls, archetype).model_copy(
                    update={"revised": True}
                )
                review = await self.gatekeeper.review(record, archetype, task.names)
        return self._keep_or_reject(task, review)

    def _keep_or_reject(self, task: Task, review: Review) -> Outcome:
        if review.passed:
            # Checked again with no await in between, so two concurrent near-twins cannot both pass.
            late = self.gatekeeper.dedup.check(
                review.record.id,
                review.record.text,
                allowed_names=Gatekeeper.allowed_names(review.record, task.names),
            )
            if late.passed:
                self.rundir.append_record(review.record)
                self.gatekeeper.keep(review.record)
                return Outcome(task, accepted=True)
            review.failures.extend(late.failures)
        first = review.failures[0]
        detail = "; ".join(f"{f.reason}: {f.detail}" for f in review.failures)
        return self._reject(task, first.gate, first.reason, detail, review.record.text)

    async def _complete_document(
        self, request: Request, calls: list[Completion]
    ) -> Completion | str:
        """The document, or why there is none. Policy for cut-off documents: one retry with 1.5x
        the room; a document cut off twice is never kept. The compact style (a small local
        model) gets no retry: SmolLM2 ran out of room again in most retries measured (it does
        not stop on its own), each costing half a minute of CPU."""
        completion = await self._counted(request, calls)
        if completion.finish_reason == "length" and self.style == "full":
            longer = request.model_copy(update={"max_tokens": int(request.max_tokens * 1.5)})
            completion = await self._counted(longer, calls)
        if completion.finish_reason == "length":
            return "truncated"
        if not clean_document(completion.text):
            return "empty"
        return completion

    def _record(
        self,
        task: Task,
        idea: Idea,
        completion: Completion,
        request: Request,
        calls: list[Completion],
        archetype: Archetype,
    ) -> Record:
        usage = Usage(
            input_tokens=sum(c.input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
            cached_input_tokens=sum(c.cached_input_tokens for c in calls),
            model_calls=len(calls),
        )
        return make_record(
            task,
            idea,
            completion,
            language=archetype.targets.language,
            provider=self.writer.backend.provider,
            template_version=request.template_version,
            usage=usage,
        )

    async def _counted(self, request: Request, calls: list[Completion]) -> Completion:
        completion = await self.writer.call(request)
        calls.append(completion)
        return completion

    async def _idea(self, task: Task, archetype: Archetype, calls: list[Completion]) -> Idea | None:
        request = idea_request(task, archetype, style=self.style)
        if request.samples > 1:
            shared = await self.writer.call_shared(request, task.sample)
            if shared is not None:
                calls.append(shared)
                try:
                    return parse_idea(shared.text)
                except IdeaParseError:
                    pass  # asked again below, on its own, like any other unusable idea
            request = idea_request(task, archetype, shared=False, style=self.style)
        for _ in range(self.max_reasks + 1):
            completion = await self._counted(request, calls)
            try:
                return parse_idea(completion.text)
            except IdeaParseError as exc:
                request = reask_request(request, completion.text, str(exc))
        return None

    def _reject(self, task: Task, step: str, reason: str, detail: str, text: str = "") -> Outcome:
        self.rundir.append_reject(make_reject(task, step, reason, detail, text))
        return Outcome(task, accepted=False, reason=reason, gate=step)
