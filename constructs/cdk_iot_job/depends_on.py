"""A resource's ``DependsOn`` without a dependency that its properties already imply.

``lambda.Function`` makes its resource depend on its whole role: the role's
default policy and the role itself. A ``Fn::GetAtt`` on the role already
orders the latter, and cfn-lint reports the redundant ``DependsOn`` (W3005).
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IListProducer, IResolveContext, Lazy, Stack

__all__ = ["depend_on_all_but"]


def depend_on_all_but(resource: CfnResource, referenced: CfnResource) -> None:
    """Render ``resource``'s ``DependsOn`` without ``referenced``, which its properties reference anyway.

    The list is computed at synth, so dependencies added later are kept; an
    empty list leaves ``DependsOn`` out.
    """
    resource.add_override("DependsOn", Lazy.uncached_list(_DependsOnBesides(resource, referenced), omit_empty=True))


@jsii.implements(IListProducer)
class _DependsOnBesides:
    """A resource's ``DependsOn``, less a resource that its properties reference anyway."""

    def __init__(self, resource: CfnResource, referenced: CfnResource) -> None:
        self._resource = resource
        self._referenced = referenced

    def produce(self, _context: IResolveContext) -> list[str] | None:
        stack = Stack.of(self._resource)
        logical_ids = {
            str(stack.resolve(stack.get_logical_id(dependency)))
            for dependency in self._resource.obtain_dependencies()
            if isinstance(dependency, CfnResource)
            and dependency.node.path != self._referenced.node.path
            and Stack.of(dependency).node.path == stack.node.path
        }
        return sorted(logical_ids) or None
