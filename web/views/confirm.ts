const CONFIRM_MS = 4000;

/** A destructive button acts on the second tap within a few seconds; the first only asks (no blocking dialog). */
export function onConfirmedClick(button: HTMLButtonElement, question: string, act: () => void): void {
  const label = button.textContent ?? '';
  let armed: ReturnType<typeof setTimeout> | undefined;
  button.addEventListener('click', () => {
    if (armed === undefined) {
      button.textContent = question;
      button.classList.add('armed');
      armed = setTimeout(disarm, CONFIRM_MS);
      return;
    }
    disarm();
    act();
  });
  function disarm(): void {
    clearTimeout(armed);
    armed = undefined;
    button.textContent = label;
    button.classList.remove('armed');
  }
}
