"""Evaluate pages: the campaigns and a campaign's live scorecard. No I/O.

Values carry the unit the evaluator's metric catalogue gives them (``ListMetrics``): counts,
percent, scores, ratings, and durations in hours or days (never raw seconds)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import evaluate_pb2
from legation_console.domain.formatting import count, duration, timestamp, when

OBJECTIVE_STATUS = {
    evaluate_pb2.ObjectiveStatus.STATUS_ON_TRACK: ("On track", "govuk-tag--green"),
    evaluate_pb2.ObjectiveStatus.STATUS_AT_RISK: ("At risk", "govuk-tag--orange"),
    evaluate_pb2.ObjectiveStatus.STATUS_ACHIEVED: ("Achieved", "govuk-tag--blue"),
    evaluate_pb2.ObjectiveStatus.STATUS_MISSED: ("Missed", "govuk-tag--red"),
}


def value_in(value: float, unit: str) -> str:
    """``value`` in its unit: ``1,234``, ``25.0 %``, ``-0.11``, ``4.2 of 5``, ``3.5 h``."""
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "score":
        return f"{value:+.2f}"
    if unit == "seconds":
        return duration(value)
    if unit == "rating":
        return f"{value:.1f} of 5"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def units_of(metrics: Sequence[evaluator_pb.Metric]) -> dict[str, str]:
    """Metric name (and each alias) → its unit."""
    units: dict[str, str] = {}
    for metric in metrics:
        for name in (metric.name, *metric.aliases):
            units[name] = metric.unit
    return units


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: str
    name: str
    period: str
    issues: str
    objectives: str


@dataclass(frozen=True)
class CampaignsPage:
    rows: tuple[CampaignRow, ...]
    summary: str


def campaigns_page(campaigns: Sequence[evaluate_pb2.Campaign]) -> CampaignsPage:
    """The campaigns, newest start first."""
    ordered = sorted(campaigns, key=lambda c: (-c.starts_at.seconds, c.campaign_id))
    rows = tuple(
        CampaignRow(
            campaign_id=c.campaign_id,
            name=c.name or c.campaign_id,
            period=f"{when(timestamp(c.starts_at))} to {when(timestamp(c.ends_at))}",
            issues=", ".join(c.issue_ids) or "—",
            objectives=count(len(c.objectives), "objective"),
        )
        for c in ordered
    )
    return CampaignsPage(rows, count(len(rows), "campaign"))


@dataclass(frozen=True)
class Counter:
    key: str
    label: str
    value: str


@dataclass(frozen=True)
class KpiRow:
    name: str
    value: str
    before: str


@dataclass(frozen=True)
class ObjectiveRow:
    objective_id: str
    metric: str
    status: str
    status_tag: str
    value: str
    target: str
    progress: str
    reason: str


@dataclass(frozen=True)
class ScorecardPage:
    campaign_id: str
    name: str
    computed: str
    counters: tuple[Counter, ...]
    kpis: tuple[KpiRow, ...]
    objectives: tuple[ObjectiveRow, ...]


def scorecard_page(scorecard: evaluator_pb.Scorecard, units: Mapping[str, str]) -> ScorecardPage:
    """The scorecard: counters, every KPI against its pre-campaign level, each objective."""
    response = (
        duration(scorecard.median_response_seconds) if scorecard.replies else "no replies yet"
    )
    over = count(scorecard.mentions_with_sentiment, "mention")
    sentiment = (
        f"{scorecard.mean_sentiment:+.2f} (over {over})"
        if scorecard.mentions_with_sentiment
        else "unknown"
    )
    counters = (
        Counter("mentions", "Mentions", f"{scorecard.mentions:,}"),
        Counter("publications", "Publications", f"{scorecard.publications:,}"),
        Counter("conversations", "Conversations opened", f"{scorecard.conversations_opened:,}"),
        Counter("replies", "Replies", f"{scorecard.replies:,}"),
        Counter("feedback", "Feedback", f"{scorecard.feedback:,}"),
        Counter("sentiment", "Mean sentiment (-1 to +1)", sentiment),
        Counter("response", "Median first response", response),
    )
    kpis = tuple(
        KpiRow(
            name=kpi.name.replace("_", " "),
            value=value_in(kpi.value, units.get(kpi.name, "count")),
            before=value_in(kpi.baseline, units.get(kpi.name, "count"))
            if kpi.HasField("baseline")
            else "—",
        )
        for kpi in scorecard.kpis
    )
    objectives = []
    for objective in scorecard.objectives:
        status, tag = OBJECTIVE_STATUS.get(objective.status, ("Unknown", "govuk-tag--grey"))
        unit = units.get(objective.metric, "count")
        objectives.append(
            ObjectiveRow(
                objective_id=objective.objective_id,
                metric=objective.metric.replace("_", " "),
                status=status,
                status_tag=tag,
                value=value_in(objective.value, unit),
                target=value_in(objective.target, unit),
                progress=f"{min(max(objective.progress, 0.0), 1.0) * 100:.0f} %",
                reason=objective.reason,
            )
        )
    return ScorecardPage(
        campaign_id=scorecard.campaign_id,
        name=scorecard.name or scorecard.campaign_id,
        computed=when(timestamp(scorecard.computed_at)),
        counters=counters,
        kpis=kpis,
        objectives=tuple(objectives),
    )


COMPARISONS = {
    "at_least": ("at least", evaluate_pb2.Objective.COMPARISON_AT_LEAST),
    "at_most": ("at most", evaluate_pb2.Objective.COMPARISON_AT_MOST),
    "increase_by": ("an increase of", evaluate_pb2.Objective.COMPARISON_INCREASE_BY),
    "decrease_by": ("a decrease of", evaluate_pb2.Objective.COMPARISON_DECREASE_BY),
}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class CampaignForm:
    """A new campaign with its first objective; dates as YYYY-MM-DD (UTC days)."""

    campaign_id: str = ""
    name: str = ""
    description: str = ""
    starts: str = ""
    ends: str = ""
    issues: str = ""
    objective_id: str = ""
    metric: str = "mentions"
    comparison: str = "at_least"
    target: str = ""
    deadline: str = ""
    errors: tuple[tuple[str, str], ...] = ()

    def error(self, field: str) -> str | None:
        return next((message for name, message in self.errors if name == field), None)


def campaign_form(values: Mapping[str, str]) -> CampaignForm:
    """The form as posted (missing fields empty)."""
    return CampaignForm(
        campaign_id=values.get("campaign_id", "").strip(),
        name=values.get("name", ""),
        description=values.get("description", ""),
        starts=values.get("starts", "").strip(),
        ends=values.get("ends", "").strip(),
        issues=values.get("issues", ""),
        objective_id=values.get("objective_id", "").strip(),
        metric=values.get("metric", ""),
        comparison=values.get("comparison", ""),
        target=values.get("target", "").strip(),
        deadline=values.get("deadline", "").strip(),
    )


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def campaign_form_errors(form: CampaignForm) -> CampaignForm:
    """``form`` with what the person must fix before anything is sent."""
    errors: list[tuple[str, str]] = []
    if not _ID.match(form.campaign_id.strip()):
        errors.append(("campaign_id", "Enter an id of lower-case letters, digits and hyphens"))
    if not form.name.strip():
        errors.append(("name", "Enter the campaign's name"))
    for field, label in (("starts", "start"), ("ends", "end")):
        if _day(getattr(form, field)) is None:
            errors.append((field, f"Enter the {label} date as YYYY-MM-DD"))
    if not _ID.match(form.objective_id.strip()):
        errors.append(("objective_id", "Enter the objective's id (letters, digits, hyphens)"))
    if form.comparison not in COMPARISONS:
        errors.append(("comparison", "Choose how the target compares"))
    try:
        float(form.target)
    except ValueError:
        errors.append(("target", "Enter the target as a number"))
    if form.deadline.strip() and _day(form.deadline) is None:
        errors.append(("deadline", "Enter the deadline as YYYY-MM-DD, or leave it empty"))
    return replace(form, errors=tuple(errors))


def _timestamp_of(day: date, end: bool = False) -> datetime:
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC).replace(microsecond=0)


def campaign_of(form: CampaignForm) -> evaluate_pb2.Campaign:
    """The ``CreateCampaign`` request of a valid form (see :func:`campaign_form_errors`)."""
    campaign = evaluate_pb2.Campaign(
        campaign_id=form.campaign_id.strip(),
        name=form.name.strip(),
        description=form.description.strip(),
        issue_ids=[part for part in re.split(r"[,\s]+", form.issues) if part],
    )
    starts, ends = _day(form.starts), _day(form.ends)
    if starts is not None:
        campaign.starts_at.FromDatetime(_timestamp_of(starts))
    if ends is not None:
        campaign.ends_at.FromDatetime(_timestamp_of(ends, end=True))
    objective = campaign.objectives.add(
        objective_id=form.objective_id.strip(),
        metric=form.metric,
        comparison=COMPARISONS[form.comparison][1],
        target=float(form.target),
    )
    deadline = _day(form.deadline)
    if deadline is not None:
        objective.deadline.FromDatetime(_timestamp_of(deadline, end=True))
    return campaign


_API_FIELDS = {
    "campaign_id": "campaign_id",
    "name": "name",
    "starts_at": "starts",
    "ends_at": "ends",
    "issue_ids": "issues",
    "objectives[0].objective_id": "objective_id",
    "objectives[0].metric": "metric",
    "objectives[0].comparison": "comparison",
    "objectives[0].target": "target",
    "objectives[0].deadline": "deadline",
}


_LABELS = {
    "campaign_id": "Campaign id",
    "name": "Name",
    "starts": "Starts",
    "ends": "Ends",
    "issues": "Tracked issues",
    "objective_id": "Objective id",
    "metric": "Measure",
    "comparison": "Target is",
    "target": "Target",
    "deadline": "Deadline",
}


def with_campaign_error(form: CampaignForm, detail: str) -> CampaignForm:
    """The evaluator's INVALID_ARGUMENT detail on the field it names
    (``objectives[0].target 120 is outside ...`` → the target)."""
    head = re.split(r"[\s:]", detail, maxsplit=1)[0]
    field = _API_FIELDS.get(re.sub(r"^(issue_ids)\[\d+\]$", r"\1", head))
    if field is None:
        return replace(form, errors=(("name", detail[:1].upper() + detail[1:]),))
    # In the form's words: "Target 120 is outside ...", not "objectives[0].target 120 ...".
    message = _LABELS[field] + detail[len(head) :]
    return replace(form, errors=((field, message),))


# --- Editing a campaign and its objectives -------------------------------------------------

_OBJECTIVE_FIELDS = (
    "objective_id",
    "description",
    "metric",
    "comparison",
    "target",
    "deadline",
    "filters",
    "baseline_start",
    "baseline_end",
    "from_value",
)
_OBJECTIVE_NAME = re.compile(r"^objectives-(\d{1,2})-([a-z_]+)$")


@dataclass(frozen=True)
class ObjectiveFields:
    """One objective of the edit form, as text.

    ``filters`` reads like ``language=es,fr; stance=favour``."""

    index: int
    objective_id: str = ""
    description: str = ""
    metric: str = "mentions"
    comparison: str = "at_least"
    target: str = ""
    deadline: str = ""
    filters: str = ""
    baseline_start: str = ""
    baseline_end: str = ""
    from_value: str = ""

    def name(self, field: str) -> str:
        """The form field's name and id: ``objectives-2-target``."""
        return f"objectives-{self.index}-{field}"

    def blank(self) -> bool:
        """Nothing typed: the spare row of the form, ignored."""
        return not any(
            getattr(self, field).strip()
            for field in _OBJECTIVE_FIELDS
            if field not in ("metric", "comparison")
        )


@dataclass(frozen=True)
class EditForm:
    """A campaign being edited with all its objectives (dates as YYYY-MM-DD, UTC days)."""

    campaign_id: str
    name: str = ""
    description: str = ""
    starts: str = ""
    ends: str = ""
    issues: str = ""
    objectives: tuple[ObjectiveFields, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()

    def error(self, field: str) -> str | None:
        return next((message for name, message in self.errors if name == field), None)

    def rows(self) -> tuple[ObjectiveFields, ...]:
        """The objectives and one spare row to add another."""
        return (*self.objectives, ObjectiveFields(index=len(self.objectives)))


def _day_text(value: evaluate_pb2.Campaign | evaluate_pb2.Objective, field: str) -> str:
    if not value.HasField(field):  # type: ignore[arg-type]
        return ""
    moment = timestamp(getattr(value, field))
    return moment.date().isoformat() if moment is not None else ""


def _number_text(number: float) -> str:
    return f"{number:g}"


def filters_text(filters: Sequence[evaluate_pb2.MetricFilter]) -> str:
    """``language=es,fr; stance=favour``."""
    return "; ".join(f"{f.field}={','.join(f.values)}" for f in filters)


def edit_form_of(campaign: evaluate_pb2.Campaign) -> EditForm:
    """The edit form filled from the campaign as the evaluator has it."""
    comparisons = {value: key for key, (_, value) in COMPARISONS.items()}
    objectives = tuple(
        ObjectiveFields(
            index=index,
            objective_id=o.objective_id,
            description=o.description,
            metric=o.metric,
            comparison=comparisons.get(o.comparison, "at_least"),
            target=_number_text(o.target),
            deadline=_day_text(o, "deadline"),
            filters=filters_text(o.filters),
            baseline_start=_day_text(o, "baseline_start"),
            baseline_end=_day_text(o, "baseline_end"),
            from_value=_number_text(o.from_value) if o.HasField("from_value") else "",
        )
        for index, o in enumerate(campaign.objectives)
    )
    return EditForm(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        description=campaign.description,
        starts=_day_text(campaign, "starts_at"),
        ends=_day_text(campaign, "ends_at"),
        issues=", ".join(campaign.issue_ids),
        objectives=objectives,
    )


def edit_form(campaign_id: str, values: Mapping[str, str]) -> EditForm:
    """The edit form as posted: objectives in the order of their index, blank rows dropped
    and the rest numbered again from 0 (the order the evaluator's errors name)."""
    rows: dict[int, dict[str, str]] = {}
    for name, value in values.items():
        matched = _OBJECTIVE_NAME.match(name)
        if matched and matched.group(2) in _OBJECTIVE_FIELDS:
            rows.setdefault(int(matched.group(1)), {})[matched.group(2)] = value
    typed = [ObjectiveFields(index=0, **rows[index]) for index in sorted(rows)]
    kept = tuple(replace(row, index=i) for i, row in enumerate(r for r in typed if not r.blank()))
    return EditForm(
        campaign_id=campaign_id,
        name=values.get("name", ""),
        description=values.get("description", ""),
        starts=values.get("starts", "").strip(),
        ends=values.get("ends", "").strip(),
        issues=values.get("issues", ""),
        objectives=kept,
    )


def _parse_filters(text: str) -> list[evaluate_pb2.MetricFilter] | None:
    filters = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        field, equals, listed = part.partition("=")
        values = [v.strip() for v in listed.split(",") if v.strip()]
        if not equals or not field.strip() or not values:
            return None
        filters.append(evaluate_pb2.MetricFilter(field=field.strip(), values=values))
    return filters


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def edit_form_errors(form: EditForm) -> EditForm:
    """``form`` with what the person must fix before anything is sent."""
    errors: list[tuple[str, str]] = []
    if not form.name.strip():
        errors.append(("name", "Enter the campaign's name"))
    for field, label in (("starts", "start"), ("ends", "end")):
        if _day(getattr(form, field)) is None:
            errors.append((field, f"Enter the {label} date as YYYY-MM-DD"))
    if not form.objectives:
        errors.append(("objectives-0-objective_id", "Enter at least one objective"))
    for row in form.objectives:
        number = f"Objective {row.index + 1}:"
        if not _ID.match(row.objective_id.strip()):
            errors.append(
                (row.name("objective_id"), f"{number} enter its id (letters, digits, hyphens)")
            )
        if row.comparison not in COMPARISONS:
            errors.append((row.name("comparison"), f"{number} choose how the target compares"))
        if _float(row.target) is None:
            errors.append((row.name("target"), f"{number} enter the target as a number"))
        for field in ("deadline", "baseline_start", "baseline_end"):
            if getattr(row, field).strip() and _day(getattr(row, field)) is None:
                label = field.replace("_", " ")
                errors.append(
                    (
                        row.name(field),
                        f"{number} enter the {label} as YYYY-MM-DD, or leave it empty",
                    )
                )
        if bool(row.baseline_start.strip()) != bool(row.baseline_end.strip()):
            errors.append(
                (
                    row.name("baseline_start"),
                    f"{number} enter both ends of the baseline window, or neither",
                )
            )
        if row.from_value.strip() and _float(row.from_value) is None:
            errors.append(
                (row.name("from_value"), f"{number} enter the starting value as a number")
            )
        if _parse_filters(row.filters) is None:
            errors.append(
                (row.name("filters"), f"{number} write filters as field=value,value; field=value")
            )
    return replace(form, errors=tuple(errors))


def edited_campaign(original: evaluate_pb2.Campaign, form: EditForm) -> evaluate_pb2.Campaign:
    """The ``CreateCampaign`` request replacing ``original`` with a valid form's fields;
    what the form does not show (channels, languages, partners, own accounts) is kept."""
    campaign = evaluate_pb2.Campaign()
    campaign.CopyFrom(original)
    campaign.campaign_id = form.campaign_id
    campaign.name = form.name.strip()
    campaign.description = form.description.strip()
    del campaign.issue_ids[:]
    campaign.issue_ids.extend(part for part in re.split(r"[,\s]+", form.issues) if part)
    starts, ends = _day(form.starts), _day(form.ends)
    if starts is not None:
        campaign.starts_at.FromDatetime(_timestamp_of(starts))
    if ends is not None:
        campaign.ends_at.FromDatetime(_timestamp_of(ends, end=True))
    levels = {o.objective_id: o.level for o in original.objectives}
    del campaign.objectives[:]
    for row in form.objectives:
        objective = campaign.objectives.add(
            objective_id=row.objective_id.strip(),
            description=row.description.strip(),
            metric=row.metric,
            comparison=COMPARISONS[row.comparison][1],
            target=float(row.target),
            level=levels.get(row.objective_id.strip(), evaluate_pb2.Objective.LEVEL_UNSPECIFIED),
            filters=_parse_filters(row.filters) or [],
        )
        for field, end in (("deadline", True), ("baseline_start", False), ("baseline_end", True)):
            day = _day(getattr(row, field))
            if day is not None:
                getattr(objective, field).FromDatetime(_timestamp_of(day, end=end))
        if row.from_value.strip():
            objective.from_value = float(row.from_value)
    return campaign


_OBJECTIVE_LABELS = {
    "objective_id": "id",
    "description": "description",
    "metric": "measure",
    "comparison": "comparison",
    "target": "target",
    "deadline": "deadline",
    "filters": "filters",
    "baseline_start": "baseline start",
    "baseline_end": "baseline end",
    "from_value": "starting value",
}
_API_OBJECTIVE = re.compile(r"^objectives\[(\d+)\]\.([a-z_]+)")


def with_edit_error(form: EditForm, detail: str) -> EditForm:
    """The evaluator's INVALID_ARGUMENT detail on the field it names:
    ``objectives[2].target 120 is outside ...`` → "Objective 3: target 120 is outside ..."
    on ``objectives-2-target``."""
    head = re.split(r"[\s:]", detail, maxsplit=1)[0]
    matched = _API_OBJECTIVE.match(head)
    if matched and matched.group(2) in _OBJECTIVE_LABELS:
        index, field = int(matched.group(1)), matched.group(2)
        message = f"Objective {index + 1}: {_OBJECTIVE_LABELS[field]}{detail[len(head) :]}"
        return replace(form, errors=((f"objectives-{index}-{field}", message),))
    field = _API_FIELDS.get(re.sub(r"^(issue_ids)\[\d+\]$", r"\1", head))
    if field in ("name", "starts", "ends", "issues"):
        return replace(form, errors=((field, _LABELS[field] + detail[len(head) :]),))
    return replace(form, errors=(("name", detail[:1].upper() + detail[1:]),))


# --- Feedback, after-action reviews, reports ----------------------------------------------

FROM_ROLES = {
    "audience": ("The audience", evaluate_pb2.Feedback.FROM_ROLE_AUDIENCE),
    "colleague": ("A colleague", evaluate_pb2.Feedback.FROM_ROLE_COLLEAGUE),
    "partner": ("A partner", evaluate_pb2.Feedback.FROM_ROLE_PARTNER),
}
LESSON_KINDS = {
    "worked": ("What worked", evaluate_pb2.Lesson.KIND_WORKED),
    "did_not_work": ("What did not work", evaluate_pb2.Lesson.KIND_DID_NOT_WORK),
    "next_time": ("Next time", evaluate_pb2.Lesson.KIND_NEXT_TIME),
}
REPORT_FORMATS = {
    "html": evaluator_pb.GetCampaignReportRequest.FORMAT_HTML,
    "pdf": evaluator_pb.GetCampaignReportRequest.FORMAT_PDF,
}
REPORT_FORMAT_NAMES = {"html": "web page (HTML)", "pdf": "PDF"}


@dataclass(frozen=True)
class FeedbackForm:
    """Feedback about a campaign, as typed."""

    from_role: str = "colleague"
    author: str = ""
    organisation: str = ""
    rating: str = ""
    text: str = ""
    errors: tuple[tuple[str, str], ...] = ()

    def error(self, field: str) -> str | None:
        return next((message for name, message in self.errors if name == field), None)


def feedback_form(values: Mapping[str, str]) -> FeedbackForm:
    """The feedback form as posted, with what must be fixed before it is sent."""
    form = FeedbackForm(
        from_role=values.get("from_role", ""),
        author=values.get("author", "").strip(),
        organisation=values.get("organisation", "").strip(),
        rating=values.get("rating", "").strip(),
        text=values.get("text", ""),
    )
    errors: list[tuple[str, str]] = []
    if form.from_role not in FROM_ROLES:
        errors.append(("from_role", "Choose who the feedback is from"))
    if form.rating not in {"1", "2", "3", "4", "5"}:
        errors.append(("rating", "Choose a rating from 1 to 5"))
    if not form.text.strip():
        errors.append(("text", "Enter what they said"))
    return replace(form, errors=tuple(errors))


def feedback_request(
    campaign_id: str, form: FeedbackForm, request_id: str
) -> evaluator_pb.SubmitFeedbackRequest:
    """The ``SubmitFeedback`` request of a valid form, about the campaign."""
    return evaluator_pb.SubmitFeedbackRequest(
        campaign_id=campaign_id,
        request_id=request_id,
        feedback=evaluate_pb2.Feedback(
            from_role=FROM_ROLES[form.from_role][1],
            author=form.author,
            organisation=form.organisation,
            rating=int(form.rating),
            text=form.text.strip(),
            about=campaign_id,
            about_kind=evaluate_pb2.Feedback.ABOUT_KIND_CAMPAIGN,
        ),
    )


_FEEDBACK_FIELDS = {
    "from_role": "from_role",
    "author": "author",
    "organisation": "author",
    "rating": "rating",
    "text": "text",
}


def with_feedback_error(form: FeedbackForm, detail: str) -> FeedbackForm:
    """The evaluator's detail (``feedback.organisation (or author) is required ...``) on
    the field it names, the text field otherwise."""
    head = re.split(r"[\s:]", detail, maxsplit=1)[0].removeprefix("feedback.")
    field = _FEEDBACK_FIELDS.get(head, "text")
    return replace(form, errors=((field, detail[:1].upper() + detail[1:]),))


@dataclass(frozen=True)
class LessonRow:
    text: str
    source: str


@dataclass(frozen=True)
class LessonGroup:
    key: str
    title: str
    lessons: tuple[LessonRow, ...]


@dataclass(frozen=True)
class ReviewPage:
    """An after-action review as the evaluator returned it."""

    campaign_id: str
    author: str
    reviewed: str
    feedback: str
    mean_rating: str
    objectives: tuple[ObjectiveRow, ...]
    groups: tuple[LessonGroup, ...]


def lessons_of(values: Mapping[str, str], author: str) -> list[evaluate_pb2.Lesson]:
    """The team's lessons: one a line in each of the three boxes (worked, did not work,
    next time)."""
    lessons = []
    for key, (_, kind) in LESSON_KINDS.items():
        for line in values.get(key, "").splitlines():
            if line.strip():
                lessons.append(
                    evaluate_pb2.Lesson(kind=kind, text=line.strip(), source=f"team:{author}")
                )
    return lessons


def review_page(review: evaluate_pb2.AfterActionReview, units: Mapping[str, str]) -> ReviewPage:
    """The review: final objective status, lessons grouped by kind, feedback counted."""
    card = scorecard_page(evaluator_pb.Scorecard(objectives=review.objectives), units)
    groups = tuple(
        LessonGroup(
            key=key,
            title=title,
            lessons=tuple(
                LessonRow(lesson.text, lesson.source)
                for lesson in review.lessons
                if lesson.kind == kind
            ),
        )
        for key, (title, kind) in LESSON_KINDS.items()
    )
    return ReviewPage(
        campaign_id=review.campaign_id,
        author=review.author,
        reviewed=when(timestamp(review.reviewed_at)),
        feedback=count(review.feedback_count, "piece of feedback", "pieces of feedback"),
        mean_rating=value_in(review.mean_rating, "rating")
        if review.feedback_count
        else "no ratings",
        objectives=card.objectives,
        groups=groups,
    )


def report_download_name(report: evaluator_pb.CampaignReport, format_key: str) -> str:
    """A safe file name for the download: the evaluator's, or ``<campaign>-report.<ext>``."""
    name = report.file_name or f"{report.campaign_id}-report.{format_key}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120]


def feedback_summary(scorecard: evaluator_pb.Scorecard) -> str:
    """What the feedback so far amounts to: its count and mean rating."""
    said = count(scorecard.feedback, "piece of feedback", "pieces of feedback")
    rating = next((k.value for k in scorecard.kpis if k.name == "mean_rating"), None)
    if not scorecard.feedback or rating is None:
        return said
    return f"{said}, rated {value_in(rating, 'rating')} on average"


# --- Feedback and review lists, report progress --------------------------------------------

_FROM_ROLE_NAMES = {
    evaluate_pb2.Feedback.FROM_ROLE_AUDIENCE: "Audience member",
    evaluate_pb2.Feedback.FROM_ROLE_COLLEAGUE: "Colleague",
    evaluate_pb2.Feedback.FROM_ROLE_PARTNER: "Partner",
}
_ABOUT_NAMES = {
    evaluate_pb2.Feedback.ABOUT_KIND_PUBLICATION: "publication",
    evaluate_pb2.Feedback.ABOUT_KIND_CONVERSATION: "conversation",
}


@dataclass(frozen=True)
class FeedbackRow:
    campaign_id: str
    campaign: str
    who: str
    rating: str
    text: str
    about: str
    recorded: str


@dataclass(frozen=True)
class FeedbackListPage:
    rows: tuple[FeedbackRow, ...]
    summary: str
    campaign_id: str
    from_role: str
    next_page: str


def from_role_of(key: str) -> evaluate_pb2.Feedback.FromRole.ValueType:
    """The role a filter's key names (``partner``), unspecified for any other text."""
    return FROM_ROLES[key][1] if key in FROM_ROLES else evaluate_pb2.Feedback.FROM_ROLE_UNSPECIFIED


def feedback_rows(
    items: Sequence[evaluator_pb.FeedbackItem], names: Mapping[str, str]
) -> tuple[FeedbackRow, ...]:
    """Each piece of feedback: who said it, the rating out of 5, what about, when."""
    rows = []
    for item in items:
        feedback = item.feedback
        people = [n for n in (feedback.author.strip(), feedback.organisation.strip()) if n]
        who = _FROM_ROLE_NAMES.get(feedback.from_role, "Someone")
        if people:
            who += f": {', '.join(people)}"
        about_kind = _ABOUT_NAMES.get(feedback.about_kind)
        rows.append(
            FeedbackRow(
                campaign_id=item.campaign_id,
                campaign=names.get(item.campaign_id) or item.campaign_id,
                who=who,
                rating=f"{feedback.rating} of 5" if feedback.rating else "not rated",
                text=feedback.text,
                about=f"the {about_kind} {feedback.about}" if about_kind else "the campaign",
                recorded=when(timestamp(item.recorded_at)),
            )
        )
    return tuple(rows)


def feedback_list_page(
    response: evaluator_pb.ListFeedbackResponse,
    names: Mapping[str, str],
    campaign_id: str,
    from_role: str,
) -> FeedbackListPage:
    """A page of feedback, newest first, with how many match the filters."""
    rows = feedback_rows(response.feedback, names)
    summary = count(response.total, "piece of feedback", "pieces of feedback")
    if campaign_id:
        summary += f" on {names.get(campaign_id) or campaign_id}"
    if from_role in FROM_ROLES:
        summary += f" from {FROM_ROLES[from_role][0].lower()}"
    if response.next_page_token or len(rows) < response.total:
        summary += f", {count(len(rows), 'shown', 'shown')} here"
    return FeedbackListPage(rows, summary, campaign_id, from_role, response.next_page_token)


@dataclass(frozen=True)
class ReviewRow:
    review_id: str
    campaign_id: str
    campaign: str
    author: str
    reviewed: str
    objectives: str
    lessons: str
    feedback: str


@dataclass(frozen=True)
class ReviewsPage:
    rows: tuple[ReviewRow, ...]
    summary: str
    campaign_id: str
    next_page: str


def _objectives_summary(review: evaluate_pb2.AfterActionReview) -> str:
    if not review.objectives:
        return "no objectives"
    tally: dict[str, int] = {}
    for status in review.objectives:
        name = OBJECTIVE_STATUS.get(status.status, ("Not measured", ""))[0].lower()
        tally[name] = tally.get(name, 0) + 1
    parts = ", ".join(f"{number} {name}" for name, number in tally.items())
    return f"{parts} (of {count(len(review.objectives), 'objective')})"


def reviews_page(
    response: evaluator_pb.ListAfterActionReviewsResponse,
    names: Mapping[str, str],
    campaign_id: str,
) -> ReviewsPage:
    """A page of after-action reviews, newest first: who, when, how the objectives ended."""
    rows = tuple(
        ReviewRow(
            review_id=review.review_id,
            campaign_id=review.campaign_id,
            campaign=names.get(review.campaign_id) or review.campaign_id,
            author=review.author or "—",
            reviewed=when(timestamp(review.reviewed_at)),
            objectives=_objectives_summary(review),
            lessons=count(len(review.lessons), "lesson"),
            feedback=count(review.feedback_count, "piece of feedback", "pieces of feedback")
            + (
                f", rated {value_in(review.mean_rating, 'rating')} on average"
                if review.feedback_count
                else ""
            ),
        )
        for review in response.reviews
    )
    summary = count(response.total, "after-action review")
    if campaign_id:
        summary += f" of {names.get(campaign_id) or campaign_id}"
    if response.next_page_token or len(rows) < response.total:
        summary += f", {count(len(rows), 'shown', 'shown')} here"
    return ReviewsPage(rows, summary, campaign_id, response.next_page_token)


@dataclass(frozen=True)
class ReportProgress:
    """Where the drawing of a report is: ``Step 5 of 13: plot volume``."""

    done: int
    total: int
    text: str


_STEP_NAMES = {
    "publications": "reading the publications",
    "volume, attitude and voices": "counting volume, attitude and voices",
    "response times": "measuring response times",
    "scorecard": "computing the scorecard",
    "review": "reading the latest review",
    "feedback": "reading the feedback",
    "html": "writing the web page",
    "pdf": "writing the PDF",
}


def report_progress(update: evaluator_pb.CampaignReportProgress) -> ReportProgress:
    """A progress message from the evaluator, in words."""
    step = update.step
    if step.startswith("plot "):
        words = f"drawing the {step.removeprefix('plot ').replace('_', ' ')} plot"
    else:
        words = _STEP_NAMES.get(step, step)
    total = max(update.total, update.done, 1)
    return ReportProgress(update.done, total, f"Step {update.done} of {total}: {words}")


def size_of(content_length: int) -> str:
    """A download's size: ``820 bytes``, ``14.2 KB``, ``1.3 MB``."""
    if content_length < 1000:
        return count(content_length, "byte")
    if content_length < 1_000_000:
        return f"{content_length / 1000:.1f} KB"
    return f"{content_length / 1_000_000:.1f} MB"
