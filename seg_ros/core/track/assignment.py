"""
The rectangular linear assignment problem, solved as SciPy's ``linear_sum_assignment`` solves it.

API::

    assign(similarity, maximize=True) -> (rows, columns)   # optimal pairs, rows ascending

The shortest augmenting path algorithm of D. F. Crouse, "On implementing 2D rectangular
assignment algorithms" (IEEE TAES 52(4), 2016, pp. 1685-1686): one row at a time, a Dijkstra-like
search over the columns with reduced costs ``cost - u - v``, then the dual variables ``u``, ``v``
are updated and the path augmented. Written from the paper's pseudocode with the choices SciPy
documents and makes (its ``rectangular_lsap``), so that equal-cost alternatives resolve the same
way and a tracker built on it gives the same identities as one built on SciPy:

- a matrix with more rows than columns is solved transposed, and the pairs are returned sorted
  by row;
- the columns still to visit are kept in a list first filled in reverse order, and a visited
  column is replaced by the list's last one;
- among columns of equal lowest path cost, an unassigned one (a new sink) is preferred: the
  last unassigned one in list order, else the first.

The inner loop over columns is vectorised; the loop over rows and path steps stays in Python
(n rows, each O(n) steps of O(n) vector work: a few milliseconds for a hundred objects). SciPy is
not needed: a Jazzy robot has NumPy 1.26 and no SciPy requirement here.
"""

from __future__ import annotations

import numpy as np


def assign(similarity: np.ndarray, maximize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the pairs (row, column) of an optimal assignment, rows ascending.

    :param similarity: (R, C) finite numbers (read as float64); the sum over the pairs is
        maximised (``maximize``) or minimised.
    :param maximize: maximise (similarities) rather than minimise (costs).
    :return: two int64 arrays of ``min(R, C)`` row and column indices.
    :raises ValueError: not a matrix, or NaN / infinite entries.
    """
    cost = np.asarray(similarity, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f'the assignment needs a matrix, got shape {cost.shape}')
    if not np.all(np.isfinite(cost)):
        raise ValueError('the assignment matrix holds NaN or infinite entries')
    rows, columns = cost.shape
    if rows == 0 or columns == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transposed = columns < rows
    if transposed:
        cost = cost.T
    if maximize:
        cost = -cost
    cost = np.ascontiguousarray(cost)
    column_of_row = _solve(cost)
    if transposed:
        order = np.argsort(column_of_row, kind='stable')
        return column_of_row[order], order.astype(np.int64)
    return np.arange(len(column_of_row), dtype=np.int64), column_of_row


def _solve(cost: np.ndarray) -> np.ndarray:
    """Return the column of each row of a (R, C) cost matrix, R <= C, minimum total cost."""
    rows, columns = cost.shape
    u = np.zeros(rows)
    v = np.zeros(columns)
    path = np.full(columns, -1, np.int64)
    column_of_row = np.full(rows, -1, np.int64)
    row_of_column = np.full(columns, -1, np.int64)
    for current in range(rows):
        sink, lowest, path_costs, rows_seen, columns_seen = _shortest_path(
            cost, u, v, path, row_of_column, current)
        # The dual variables, then the augmentation along the path.
        u[current] += lowest
        others = np.flatnonzero(rows_seen)
        others = others[others != current]
        u[others] += lowest - path_costs[column_of_row[others]]
        v[columns_seen] -= lowest - path_costs[columns_seen]
        column = sink
        while True:
            row = path[column]
            row_of_column[column] = row
            column_of_row[row], column = column, column_of_row[row]
            if row == current:
                break
    return column_of_row


def _shortest_path(cost: np.ndarray, u: np.ndarray, v: np.ndarray, path: np.ndarray,
                   row_of_column: np.ndarray, row: int):
    """
    Find the shortest augmenting path from ``row`` to an unassigned column.

    :return: the sink column, the path's cost, every column's path cost, and the rows and
        columns visited (boolean arrays).
    """
    rows, columns = cost.shape
    remaining = np.arange(columns - 1, -1, -1, dtype=np.int64)
    path_costs = np.full(columns, np.inf)
    rows_seen = np.zeros(rows, bool)
    columns_seen = np.zeros(columns, bool)
    lowest = 0.0
    while True:
        rows_seen[row] = True
        # Reduced cost of reaching each remaining column through this row, in SciPy's order
        # of operations (bitwise the same sums).
        reduced = lowest + cost[row, remaining] - u[row] - v[remaining]
        shorter = reduced < path_costs[remaining]
        path[remaining[shorter]] = row
        path_costs[remaining[shorter]] = reduced[shorter]
        candidates = path_costs[remaining]
        lowest = float(candidates.min())
        if not np.isfinite(lowest):
            raise ValueError('the assignment matrix is infeasible')
        tied = np.flatnonzero(candidates == lowest)
        free = tied[row_of_column[remaining[tied]] == -1]
        index = int(free[-1]) if len(free) else int(tied[0])
        column = int(remaining[index])
        columns_seen[column] = True
        remaining[index] = remaining[-1]
        remaining = remaining[:-1]
        if row_of_column[column] == -1:
            return column, lowest, path_costs, rows_seen, columns_seen
        row = int(row_of_column[column])
