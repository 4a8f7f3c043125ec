/**
 * How a campaign with `schedule: {type: "optimal"}` gets a send time per contact. The send-time
 * model implements it; until a workspace has history, a fallback (the workspace's best hour) does.
 */
export interface SendTimeWindow {
  start: Date;
  end: Date;
}

export interface SendTimeRequest {
  workspaceId: string;
  contacts: { id: string; timezone: string | null; country?: string | null }[];
  window: SendTimeWindow;
  /** Local quiet hours, e.g. { start: 21, end: 9 }: no send in [21:00, 09:00) local time. */
  quietHours?: { start: number; end: number };
  /** Share of contacts sent at a uniformly random allowed hour (exploration), e.g. 0.05. */
  explorationShare?: number;
  /** Seed for the random draws, so a plan is reproducible. */
  seed?: string;
}

export interface SendTimePlan {
  contactId: string;
  at: Date;
  /** True when the hour was drawn at random for exploration. */
  exploration: boolean;
  /** Probability with which this hour was chosen (logged for IPS evaluation). */
  propensity: number;
}

export interface SendTimeChooser {
  choose(request: SendTimeRequest): Promise<SendTimePlan[]>;
}
