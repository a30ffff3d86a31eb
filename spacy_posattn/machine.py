"""What a figure was measured on, for reports."""
import os
import platform


def describe_machine(gpu_id: int = -1) -> str:
    """RETURNS (str): The GPU's name, or the CPU count and torch threads."""
    import torch

    if gpu_id >= 0:
        return f"GPU: {torch.cuda.get_device_name(gpu_id)}"
    return f"CPU: {os.cpu_count()} cores ({platform.machine()}), {torch.get_num_threads()} torch threads"
