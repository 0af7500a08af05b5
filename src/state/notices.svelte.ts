/** Notices shown under the header: what the app did on the user's behalf, and errors. */
export type NoticeLevel = 'info' | 'warning' | 'error';

export interface Notice {
  id: number;
  level: NoticeLevel;
  text: string;
}

class Notices {
  list = $state<Notice[]>([]);
  private nextId = 1;

  add(level: NoticeLevel, text: string): number {
    const id = this.nextId++;
    this.list.push({ id, level, text });
    return id;
  }

  dismiss(id: number): void {
    this.list = this.list.filter((n) => n.id !== id);
  }
}

export const notices = new Notices();
