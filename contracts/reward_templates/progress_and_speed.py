def reward_function(params):
    """Reward progress per step: the share of the lap gained since the last step, more at speed. Learns a
    fast lap sooner than the centre-line examples, which never ask for speed."""
    if not params["all_wheels_on_track"] or params["is_offtrack"]:
        return 1e-3

    progress = params["progress"]  # percent of the lap, 0-100
    steps = params["steps"]  # steps since the episode began (15 per second)
    if steps <= 0:
        return 1e-3

    # 100 % of the lap in `steps` steps: the faster the lap so far, the higher
    reward = progress / steps
    return float(max(reward, 1e-3))
