"""REST API of community clearance (mounted at /api/v1/clearance/): the worker's tasks, scoped
exactly like the console, personal data masked; decisions go through the same services.

One class per endpoint with explicit serializers (no model serializer that exposes a field by
accident)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from appeals.clearance import selectors, services
from appeals.clearance.models import ClearanceTask
from healthkit.api import ApiView, IdempotentPost
from healthkit.inputs import TextField
from healthkit.permissions import role_permission
from healthkit.selectors import popup_explain

IsClearanceWorker = role_permission(*selectors.WORKER_ROLES)


class TaskCursorPagination(CursorPagination):
    ordering = ("id",)
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class TaskSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    community = serializers.CharField(source="community.name")
    resident = serializers.CharField(source="resident.masked")
    origin = serializers.CharField()
    state = serializers.CharField()
    priority = serializers.IntegerField()
    popup_type = serializers.IntegerField(source="popup.popup_type", allow_null=True, default=None)
    appeal = serializers.CharField(source="appeal.reference", allow_null=True, default=None)
    sla_due_at = serializers.DateTimeField(allow_null=True)
    escalated_at = serializers.DateTimeField(allow_null=True)
    # The hotline asked the resident for more evidence on the appeal: the SLA clock stands meanwhile.
    on_hold_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class ClearanceTaskListApi(ApiView):
    """Your communities' tasks (supervisors: all), by id, with the worklist's filters."""

    permission_classes = [IsClearanceWorker]
    pagination_class = TaskCursorPagination  # also tells the schema the list is paged

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=["open", "all", *ClearanceTask.State.values], required=False)
        origin = serializers.ChoiceField(choices=ClearanceTask.Origin.choices, required=False)
        priority = serializers.ChoiceField(choices=ClearanceTask.Priority.choices, required=False)
        community = serializers.IntegerField(required=False)
        overdue = serializers.BooleanField(required=False, default=False)

    query_serializer = FilterSerializer

    @extend_schema(responses=TaskSummarySerializer(many=True))
    def get(self, request):
        f = self.query
        tasks = selectors.worklist(user=request.user, filters=selectors.WorklistFilters(
            state=f.get("state", ""), origin=f.get("origin", ""), priority=f.get("priority"),
            community=f.get("community"), overdue=f.get("overdue", False)))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(tasks.order_by("id"), request, view=self)
        return paginator.get_paginated_response(TaskSummarySerializer(page, many=True).data)


class ClearanceTaskDetailApi(ApiView):
    """One task you may see: its resident (masked), confirmation, decision and history."""

    permission_classes = [IsClearanceWorker]

    class OutputSerializer(TaskSummarySerializer):
        contact_phone = serializers.CharField(source="contact_phone_masked")
        confirmation = serializers.DictField()
        confirmed_at = serializers.DateTimeField(allow_null=True)
        commitment_required = serializers.BooleanField()
        commitment_signed_at = serializers.DateTimeField(allow_null=True)
        outcome = serializers.CharField()
        measures_until = serializers.DateTimeField(allow_null=True)
        decision_reason = serializers.CharField()
        popup_explanation = serializers.ListField(child=serializers.CharField())
        accept_refusal = serializers.CharField(
            help_text="Why \"accept\" would be refused now (e.g. popup 3 before its measures are complete); "
                      "empty when it may be accepted or the task is decided.")
        history = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request, pk: int):
        task = selectors.task_access(user=request.user, task_id=pk, where="api")
        task.popup_explanation = [str(line) for line in popup_explain(task.popup)] if task.popup_id else []
        task.accept_refusal = (selectors.task_accept_refusal(task=task, popup=selectors.task_decision_popup(task))
                               if task.is_open else "")
        task.history = [
            {"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor_label, "reason": e.reason,
             "from": e.from_state, "to": e.to_state}
            for e in selectors.task_history(task)
        ]
        return Response(self.OutputSerializer(task).data)


class ClearanceTaskDecisionApi(IdempotentPost, ApiView):
    """Accept (lift), reject with the next step, or ask the resident for information."""

    permission_classes = [IsClearanceWorker]

    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["accept", "reject", "info"])
        reason = TextField(multiline=True, max_length=500, required=False, allow_blank=True, default="")
        next_step = serializers.ChoiceField(choices=ClearanceTask.NextStep.choices, required=False)
        question = TextField(multiline=True, max_length=300, required=False, allow_blank=True, default="")

    def replay_check(self, request, answer, pk: int) -> None:
        selectors.task_access(user=request.user, task_id=pk, where="api:decision:replay")

    @extend_schema(request=InputSerializer, responses=TaskSummarySerializer)
    def post(self, request, pk: int):
        task = selectors.task_access(user=request.user, task_id=pk, where="api:decision")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        if d["decision"] == "accept":
            task = services.clearance_accept(task=task, actor=request.user, reason=d["reason"])
        elif d["decision"] == "reject":
            task = services.clearance_reject(task=task, actor=request.user, reason=d["reason"],
                                             next_step=d.get("next_step", ""))
        else:
            task = services.clearance_request_info(task=task, actor=request.user, question=d["question"])
        return Response(TaskSummarySerializer(selectors.task_get(user=request.user, task_id=task.pk)).data)


class ClearanceTaskInvestigationApi(IdempotentPost, ApiView):
    """Record a type-3 investigation's outcome and start its measures."""

    permission_classes = [IsClearanceWorker]

    class InputSerializer(serializers.Serializer):
        outcome = serializers.ChoiceField(choices=ClearanceTask.Outcome.choices)
        reason = TextField(multiline=True, max_length=500)
        confirm_high_risk = serializers.BooleanField(
            default=False, help_text="Required true for outcome high_risk (centralised quarantine).")

    def replay_check(self, request, answer, pk: int) -> None:
        selectors.task_access(user=request.user, task_id=pk, where="api:investigation:replay")

    @extend_schema(request=InputSerializer, responses=TaskSummarySerializer)
    def post(self, request, pk: int):
        task = selectors.task_access(user=request.user, task_id=pk, where="api:investigation")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.clearance_investigate(task=task, actor=request.user, **data.validated_data)
        return Response(TaskSummarySerializer(selectors.task_get(user=request.user, task_id=task.pk)).data)
