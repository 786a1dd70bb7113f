"""
A table of :class:`~seg_ros.ros.parameters.ParamSpec` on a node: declared, read and checked.

Every seg_ros node keeps its parameters this one way: :meth:`ParameterTable.declare` at start-up
(unset values take their defaults, then each is checked), :meth:`ParameterTable.read` when a
managed node configures, and :class:`ParameterWatch` for runtime changes: the on-set callback
checks the values and asks the node for a *plan* (what the change needs: a new network, new
instance settings, new mask publishers, or nothing), refusing the change with its reason when
that fails; the post-set callback applies the plan once the values are set.
"""

from typing import Any, Callable, Iterable

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from seg_ros.ros.parameters import ParamSpec
from seg_ros.ros.runner import StartupError


class ParameterTable:
    """The parameters of one node, by name."""

    def __init__(self, specs: Iterable[ParamSpec]) -> None:
        """Keep the table; names must be unique."""
        self.specs = tuple(specs)
        self.by_name = {spec.name: spec for spec in self.specs}
        if len(self.by_name) != len(self.specs):
            raise ValueError('a parameter table names a parameter twice')

    def declare(self, node: Node) -> dict[str, Any]:
        """
        Declare every parameter with its descriptor; return the values, defaults filled in.

        :raises StartupError: naming the parameter and why its value is refused.
        """
        values = {}
        for spec in self.specs:
            # An array that may be empty is declared by type: rclpy cannot type [].
            default = spec.default
            if spec.item_type and not spec.default:
                default = Parameter.Type(spec.parameter_type())
            try:
                parameter = node.declare_parameter(spec.name, default, spec.descriptor())
            except Exception as error:  # rclpy raises several types for a bad override
                raise StartupError(f'parameter {spec.name}: {error}') from error
            if parameter.value is None and spec.item_type:
                # Give the typed empty array its value: an unset one breaks `ros2 param dump`.
                node.set_parameters([Parameter(spec.name, default, list(spec.default))])
            values[spec.name] = self._start_value(spec, parameter.value)
        return values

    def read(self, node: Node) -> dict[str, Any]:
        """
        Return every parameter's current value, defaults filled in.

        :raises StartupError: naming the parameter and why its value is refused.
        """
        return {spec.name: self._start_value(spec, node.get_parameter(spec.name).value)
                for spec in self.specs}

    @staticmethod
    def _start_value(spec: ParamSpec, value: Any) -> Any:
        try:
            return spec.accept(value)
        except ValueError as error:
            raise StartupError(f'parameter {error}') from None

    def checked(self, parameters: Iterable[Parameter]) -> dict[str, Any]:
        """
        Return the new values of the table's parameters among ``parameters``, defaults filled in.

        Parameters outside the table (``use_sim_time`` ...) are left out.

        :raises ValueError: why the first refused value is refused.
        """
        return {parameter.name: self.by_name[parameter.name].accept(parameter.value)
                for parameter in parameters if parameter.name in self.by_name}

    def needs(self, names: Iterable[str]) -> frozenset[str]:
        """Return what a change of these parameters needs: the ``change`` of each."""
        return frozenset(self.by_name[name].change for name in names
                         if self.by_name[name].change)


class ParameterWatch:
    """
    Runtime changes of a table's parameters: checked and planned on set, applied after.

    ``plan(values)`` gets the checked new values and returns what applying them takes, or
    raises ValueError with the reason the change is refused (the old values stay);
    ``apply(plan)`` runs once the values are set. On an rclpy without post-set callbacks
    (Humble) the plan is applied at once.
    """

    def __init__(self, node: Node, table: ParameterTable,
                 plan: Callable[[dict[str, Any]], Any], apply: Callable[[Any], None]) -> None:
        """Register the callbacks on ``node``."""
        self._table = table
        self._plan = plan
        self._apply = apply
        self._accepted: list = []
        node.add_on_set_parameters_callback(self.validate_callback)
        self._deferred = hasattr(node, 'add_post_set_parameters_callback')
        if self._deferred:
            node.add_post_set_parameters_callback(self.apply_callback)

    def validate_callback(self, parameters: list[Parameter]) -> SetParametersResult:
        """Accept a change only if every value is valid and its plan can be made."""
        try:
            plan = self._plan(self._table.checked(parameters))
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        if self._deferred:
            self._accepted.append(plan)
        else:
            self._apply(plan)
        return SetParametersResult(successful=True)

    def apply_callback(self, parameters: list[Parameter]) -> None:
        """Apply the plan of the change just set."""
        if self._accepted:
            self._apply(self._accepted.pop(0))
